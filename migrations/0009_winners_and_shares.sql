-- The judge's pick: one winner per round of a game, a player with a picture in that round. It
-- goes with the picture (a purge or a takedown of the winning picture unpicks it).
CREATE TABLE round_winners (
    game_id      uuid NOT NULL REFERENCES games (game_id) ON DELETE CASCADE,
    round_number integer NOT NULL,
    player_id    uuid NOT NULL,
    image_id     uuid NOT NULL REFERENCES generated_images (image_id) ON DELETE CASCADE,
    chosen_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (game_id, round_number)
);
CREATE INDEX round_winners_image_idx ON round_winners (image_id);

-- Share links of a whole game (round_number NULL) or of one round. share_id is 144 random bits
-- (base64url). While a share lives, the cleanup keeps its images past their own expiry.
CREATE TABLE shares (
    share_id     text PRIMARY KEY,
    game_id      uuid NOT NULL REFERENCES games (game_id) ON DELETE CASCADE,
    round_number integer,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz
);
CREATE INDEX shares_game_idx ON shares (game_id);
