-- A month's store: every recurring job costs what changed, not what is stored.

-- Storage figures kept as the data changes. Triggers append one delta row per statement and
-- expiry minute (an insert: no row that concurrent uploads queue on); whoever reads the figures
-- folds the deltas into usage_totals first (db/stats.py), each minute's row and the grand total
-- under 'infinity'. Images are counted by the minute they expire in, so the live figures are
-- the grand total less the minutes already past (expired, not yet deleted: the cleanup's
-- backlog) and an index range of the current minute, whatever the store holds. Made renditions
-- are counted under '-infinity' (stored files, never "live" images).
CREATE TABLE usage_deltas (
    expires_minute   timestamptz NOT NULL,
    images           bigint NOT NULL,
    original_bytes   bigint NOT NULL,
    rendition_bytes  bigint NOT NULL
);

CREATE TABLE usage_totals (
    expires_minute   timestamptz PRIMARY KEY,
    images           bigint NOT NULL,
    original_bytes   bigint NOT NULL,
    rendition_bytes  bigint NOT NULL
);

CREATE FUNCTION usage_count_images() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO usage_deltas
        SELECT date_trunc('minute', expires_at), count(*), sum(size_bytes), 0
        FROM new_rows GROUP BY 1;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO usage_deltas
        SELECT date_trunc('minute', expires_at), -count(*), -sum(size_bytes), 0
        FROM old_rows GROUP BY 1;
    ELSE
        INSERT INTO usage_deltas
        SELECT minute, sum(images), sum(bytes), 0 FROM (
            SELECT date_trunc('minute', o.expires_at) AS minute, -1 AS images,
                   -o.size_bytes AS bytes
            FROM old_rows o JOIN new_rows n USING (image_id)
            WHERE o.expires_at <> n.expires_at OR o.size_bytes <> n.size_bytes
            UNION ALL
            SELECT date_trunc('minute', n.expires_at), 1, n.size_bytes
            FROM old_rows o JOIN new_rows n USING (image_id)
            WHERE o.expires_at <> n.expires_at OR o.size_bytes <> n.size_bytes
        ) AS moved
        GROUP BY minute HAVING sum(images) <> 0 OR sum(bytes) <> 0;
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION usage_count_renditions() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    made bigint;   -- renditions whose bytes exist
    bytes bigint;
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT count(size_bytes), coalesce(sum(size_bytes), 0) INTO made, bytes FROM new_rows;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT -count(size_bytes), -coalesce(sum(size_bytes), 0) INTO made, bytes FROM old_rows;
    ELSE
        SELECT n.made - o.made, n.bytes - o.bytes INTO made, bytes
        FROM (SELECT count(size_bytes) AS made, coalesce(sum(size_bytes), 0) AS bytes
              FROM new_rows) AS n,
             (SELECT count(size_bytes) AS made, coalesce(sum(size_bytes), 0) AS bytes
              FROM old_rows) AS o;
    END IF;
    IF made <> 0 OR bytes <> 0 THEN
        INSERT INTO usage_deltas VALUES ('-infinity', made, 0, bytes);
    END IF;
    RETURN NULL;
END $$;

-- Triggers first: from here on writers wait for this migration's commit, so the counts below
-- and every later change add up exactly.
CREATE TRIGGER usage_images_inserted AFTER INSERT ON generated_images
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION usage_count_images();
CREATE TRIGGER usage_images_deleted AFTER DELETE ON generated_images
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION usage_count_images();
CREATE TRIGGER usage_images_updated AFTER UPDATE ON generated_images
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION usage_count_images();
CREATE TRIGGER usage_renditions_inserted AFTER INSERT ON image_renditions
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION usage_count_renditions();
CREATE TRIGGER usage_renditions_deleted AFTER DELETE ON image_renditions
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION usage_count_renditions();
CREATE TRIGGER usage_renditions_updated AFTER UPDATE ON image_renditions
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION usage_count_renditions();

INSERT INTO usage_totals
SELECT date_trunc('minute', expires_at), count(*), sum(size_bytes), 0
FROM generated_images GROUP BY 1;
INSERT INTO usage_totals
SELECT '-infinity', count(size_bytes), 0, coalesce(sum(size_bytes), 0) FROM image_renditions;
INSERT INTO usage_totals
SELECT 'infinity', sum(images), sum(original_bytes), sum(rendition_bytes) FROM usage_totals;

-- Places written before their rows commit: a row here names a key prefix (one image's files:
-- its original and renditions) whose bytes may be published or linked. The transaction that
-- records the image deletes it; an upload that fails deletes its files and then it; what a
-- crash leaves is all the nightly sweep looks at (never a walk of the store).
CREATE TABLE write_intents (
    intent_id   bigserial PRIMARY KEY,
    key_prefix  text NOT NULL,
    written_at  timestamptz NOT NULL DEFAULT now()
);

-- The audit (`image-sidecar audit`): the paced walk of the whole store for files that no row
-- names and no intent covers. One replica at a time (a lease), resumable.
CREATE TABLE audit_state (
    only_row         boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    holder           uuid,
    lease_expires_at timestamptz,
    resume_after     text,          -- the last position (a directory or a key) a run finished
    walk_started_at  timestamptz,   -- when the walk under way began
    last_success_at  timestamptz    -- when a walk last reached the end
);

-- The scrub's cycle: each run checks a slice and the next goes on from there; a cycle ends when
-- the walk reaches the last image. The images after the cursor were last checked in the cycle
-- before, so the oldest check is no older than that cycle's start.
ALTER TABLE scrub_state ADD COLUMN cycle_started_at timestamptz;
ALTER TABLE scrub_state ADD COLUMN previous_cycle_started_at timestamptz;
ALTER TABLE scrub_state ADD COLUMN last_slice_at timestamptz;

-- cache_hits was only ever inserted into: daily_usage holds the same savings per day and
-- service, and it is what /api/stats reads.
DROP TABLE cache_hits;

-- The cleanup forgets the games its deletions empty; a game emptied before it is a day old (a
-- purge) waits here for a day, so that a late upload of a game in play finds its row. Both by
-- key, never by looking at every game.
CREATE TABLE emptied_games (
    game_id     uuid PRIMARY KEY,
    emptied_at  timestamptz NOT NULL DEFAULT now()
);
