-- Renditions made when first asked for: a rendition's row exists from the upload on (its URL
-- and size are known from the original), its size_bytes is NULL until its bytes are made, and
-- render_claimed_until is the claim of the one process making it (single-flight across the
-- workers and replicas; a claim whose holder died lapses).
ALTER TABLE image_renditions ALTER COLUMN size_bytes DROP NOT NULL;
ALTER TABLE image_renditions ADD COLUMN render_claimed_until timestamptz;
