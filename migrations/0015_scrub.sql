-- The scrub (lifecycle.scrub) reads every stored file back and compares it with its record.
-- Renditions record their SHA-256 from now on (those made before are checked by size once,
-- then recorded).
ALTER TABLE image_renditions ADD COLUMN sha256 char(64);

-- An original whose bytes are damaged or missing and could not be restored: taken out of
-- service (its file moved to quarantine/<image_path>, its URL answers 410, no cache hit).
ALTER TABLE generated_images ADD COLUMN damaged_at timestamptz;

-- One replica scrubs at a time (a lease, as the cleanup's), and a run goes on where an
-- interrupted one stopped.
CREATE TABLE scrub_state (
    only_row         boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    holder           uuid,
    lease_expires_at timestamptz,
    resume_after     uuid,         -- the last image an unfinished run checked
    last_success_at  timestamptz
);
