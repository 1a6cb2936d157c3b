-- The seed story's generated_images and image_cache, in PostgreSQL.
-- game_id, round_id, player_id and submission_id belong to the game server's own tables:
-- they are kept as UUIDs without foreign keys, since those tables live in another service.

CREATE TABLE generated_images (
    image_id            uuid PRIMARY KEY,
    submission_id       uuid NOT NULL UNIQUE,
    game_id             uuid NOT NULL,
    game_code           text NOT NULL,
    round_id            uuid NOT NULL,
    round_number        integer NOT NULL CHECK (round_number >= 0),
    player_id           uuid NOT NULL,
    completed_sentence  text NOT NULL,
    prompt              text NOT NULL,
    art_style           text,
    ai_service          text,
    storage_key         text NOT NULL UNIQUE,
    content_type        text NOT NULL,
    size_bytes          bigint NOT NULL CHECK (size_bytes > 0),
    sha256              char(64) NOT NULL,
    prompt_hash         char(64) NOT NULL,
    generation_cost_usd numeric(12, 6) CHECK (generation_cost_usd >= 0),
    reused_from         uuid,
    created_at          timestamptz NOT NULL DEFAULT now(),
    expires_at          timestamptz NOT NULL
);

CREATE INDEX generated_images_game_round_idx ON generated_images (game_code, round_number);
CREATE INDEX generated_images_round_id_idx ON generated_images (round_id);
CREATE INDEX generated_images_expires_at_idx ON generated_images (expires_at);
CREATE INDEX generated_images_sha256_idx ON generated_images (sha256);
CREATE INDEX generated_images_prompt_hash_idx ON generated_images (prompt_hash);

CREATE TABLE image_cache (
    prompt_hash char(64) PRIMARY KEY,
    image_id    uuid NOT NULL REFERENCES generated_images (image_id),
    hit_count   bigint NOT NULL DEFAULT 0,
    last_hit    timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX image_cache_image_id_idx ON image_cache (image_id);
