-- Prompt cache, second version.

-- The generation parameters that shape a picture; with either, the prompt hash is version 2.
ALTER TABLE generated_images ADD COLUMN model text, ADD COLUMN size text;

-- History that outlives the images: what happened each UTC day, per AI service ('' when the
-- upload named none). Written with the record it counts, never deleted by cleanup or purges.
CREATE TABLE daily_usage (
    day                  date NOT NULL,
    ai_service           text NOT NULL,
    generated            integer NOT NULL DEFAULT 0,
    reused               integer NOT NULL DEFAULT 0,
    bytes_stored         bigint NOT NULL DEFAULT 0,
    generation_cost_usd  numeric(14, 6) NOT NULL DEFAULT 0,
    cost_saved_usd       numeric(14, 6) NOT NULL DEFAULT 0,
    PRIMARY KEY (day, ai_service)
);

-- What happened before this table existed, as far as the rows still stored tell.
INSERT INTO daily_usage (day, ai_service, generated, reused, bytes_stored, generation_cost_usd)
SELECT (created_at AT TIME ZONE 'UTC')::date, coalesce(ai_service, ''),
       count(*) FILTER (WHERE reused_from IS NULL),
       count(*) FILTER (WHERE reused_from IS NOT NULL),
       coalesce(sum(size_bytes) FILTER (WHERE reused_from IS NULL), 0),
       coalesce(sum(generation_cost_usd) FILTER (WHERE reused_from IS NULL), 0)
FROM generated_images GROUP BY 1, 2;

UPDATE daily_usage u SET cost_saved_usd = saved.total
FROM (SELECT (h.hit_at AT TIME ZONE 'UTC')::date AS day, coalesce(g.ai_service, '') AS ai_service,
             sum(h.cost_saved_usd) AS total
      FROM cache_hits h JOIN generated_images g ON g.image_id = h.image_id
      GROUP BY 1, 2) AS saved
WHERE u.day = saved.day AND u.ai_service = saved.ai_service;

-- Content taken down by moderation: never stored or returned again.
CREATE TABLE blocked_content (
    sha256      char(64) PRIMARY KEY,
    blocked_at  timestamptz NOT NULL DEFAULT now(),
    reason      text
);
