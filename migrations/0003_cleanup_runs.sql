-- Finished cleanup runs, so "when did a cleanup last succeed" is one answer for every replica
-- and survives restarts (the alert on a stalled cleanup reads it through the metrics).
CREATE TABLE cleanup_runs (
    run_id          bigserial PRIMARY KEY,
    finished_at     timestamptz NOT NULL DEFAULT now(),
    outcome         text NOT NULL CHECK (outcome IN ('success', 'failed')),
    images_deleted  bigint NOT NULL,
    bytes_freed     bigint NOT NULL,
    seconds         double precision NOT NULL
);

CREATE INDEX cleanup_runs_success_idx ON cleanup_runs (finished_at) WHERE outcome = 'success';
