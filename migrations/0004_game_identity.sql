-- Game identity: a game is its game_id; a room code is a handle that games recycle over time.
-- Also the story's column names (Story 5.3) beside ours, and one picture per player per round.

-- Room codes compare case-insensitively: they are stored in upper case.
UPDATE generated_images SET game_code = upper(game_code) WHERE game_code <> upper(game_code);

-- Every game the sidecar has seen, with its code; created_at is its first image, so "the most
-- recent game holding a code" is one index scan.
CREATE TABLE games (
    game_id    uuid PRIMARY KEY,
    game_code  text NOT NULL CHECK (game_code = upper(game_code)),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX games_code_recent_idx ON games (game_code, created_at DESC);

-- Within a game, a round_id always has the same round_number and the reverse.
CREATE TABLE game_rounds (
    game_id      uuid NOT NULL REFERENCES games (game_id) ON DELETE CASCADE,
    round_id     uuid NOT NULL,
    round_number integer NOT NULL CHECK (round_number >= 0),
    PRIMARY KEY (game_id, round_id),
    UNIQUE (game_id, round_number)
);

INSERT INTO games (game_id, game_code, created_at)
SELECT DISTINCT ON (game_id) game_id, game_code, created_at
FROM generated_images ORDER BY game_id, created_at;

-- Earlier versions accepted contradicting rounds; the first one seen wins.
INSERT INTO game_rounds (game_id, round_id, round_number)
SELECT DISTINCT ON (game_id, round_id) game_id, round_id, round_number
FROM generated_images ORDER BY game_id, round_id, created_at
ON CONFLICT DO NOTHING;

-- The story's names: image_path is the storage key; image_url the URL as issued at upload
-- (rows from before this migration get the default public base); generated_at when the AI
-- made the picture (a reuse keeps its source's).
ALTER TABLE generated_images RENAME COLUMN storage_key TO image_path;
ALTER TABLE generated_images RENAME CONSTRAINT generated_images_storage_key_key
    TO generated_images_image_path_key;
ALTER TABLE generated_images ADD COLUMN image_url text;
UPDATE generated_images SET image_url = '/generated-images/' || image_path;
ALTER TABLE generated_images ALTER COLUMN image_url SET NOT NULL;
ALTER TABLE generated_images ADD COLUMN generated_at timestamptz;
UPDATE generated_images SET generated_at = created_at;
ALTER TABLE generated_images ALTER COLUMN generated_at SET NOT NULL;
ALTER TABLE generated_images ALTER COLUMN generated_at SET DEFAULT now();
ALTER TABLE generated_images ALTER COLUMN image_id SET DEFAULT gen_random_uuid();

-- One picture per player per round, whatever its type. Earlier versions allowed several: all
-- but the newest are kept (their URLs still work until they expire) but marked superseded, and
-- neither listed nor counted against the rule.
ALTER TABLE generated_images ADD COLUMN superseded boolean NOT NULL DEFAULT false;
UPDATE generated_images gi SET superseded = true
FROM (
    SELECT image_id, row_number() OVER (
        PARTITION BY game_id, round_number, player_id ORDER BY created_at DESC, image_id
    ) AS newest_first
    FROM generated_images
) ranked
WHERE ranked.image_id = gi.image_id AND ranked.newest_first > 1;
CREATE UNIQUE INDEX generated_images_one_per_player_idx
    ON generated_images (game_id, round_number, player_id) WHERE NOT superseded;

-- Listings and purges find a game through games (by code) and then its rows by game_id.
DROP INDEX generated_images_game_round_idx;
CREATE INDEX generated_images_game_id_idx ON generated_images (game_id);

-- The story's image_cache: cache_id, the prompt, and hit_count counting every use of the image,
-- its generation included (DEFAULT 1), last_hit the last use (DEFAULT now()).
ALTER TABLE image_cache ADD COLUMN cache_id uuid NOT NULL DEFAULT gen_random_uuid() UNIQUE;
ALTER TABLE image_cache ADD COLUMN prompt text;
UPDATE image_cache ic SET prompt = gi.prompt FROM generated_images gi WHERE gi.image_id = ic.image_id;
ALTER TABLE image_cache ALTER COLUMN prompt SET NOT NULL;
UPDATE image_cache SET hit_count = hit_count + 1, last_hit = coalesce(last_hit, created_at);
ALTER TABLE image_cache ALTER COLUMN hit_count SET DEFAULT 1;
ALTER TABLE image_cache ALTER COLUMN last_hit SET DEFAULT now();
ALTER TABLE image_cache ALTER COLUMN last_hit SET NOT NULL;
