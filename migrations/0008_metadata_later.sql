-- The story's game server saves a picture first and describes it afterwards
-- (saveImage, then cacheImageMetadata). A record may wait for its sentence: until then it has
-- no prompt, no prompt hash and no cache entry.
ALTER TABLE generated_images
    ALTER COLUMN completed_sentence DROP NOT NULL,
    ALTER COLUMN prompt DROP NOT NULL,
    ALTER COLUMN prompt_hash DROP NOT NULL,
    ADD CONSTRAINT generated_images_described_check CHECK (
        (completed_sentence IS NULL) = (prompt IS NULL)
        AND (prompt IS NULL) = (prompt_hash IS NULL));
