-- Perceptual hashes (images.likeness): what a picture looks like, so that a takedown also
-- refuses its look-alikes. Null until computed (pictures stored before this migration get
-- theirs from `image-sidecar renditions --backfill`).
ALTER TABLE generated_images ADD COLUMN perceptual_hash bit(256);

-- What a takedown blocks besides the exact bytes: the picture's hash and those of nine crops
-- of it. Rows are only ever added, under the takedown's lock, so their ids commit in order and
-- each worker keeps a copy it extends by id (safety.lookalikes).
CREATE TABLE blocked_lookalikes (
    id               bigserial PRIMARY KEY,
    sha256           char(64) NOT NULL REFERENCES blocked_content (sha256) ON DELETE CASCADE,
    perceptual_hash  bit(256) NOT NULL
);
CREATE INDEX blocked_lookalikes_sha256 ON blocked_lookalikes (sha256);
