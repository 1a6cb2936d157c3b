-- Single-flight claims: while a claim is live, other callers of the same prompt wait instead of
-- paying for a second AI call. A claim past expires_at may be taken over by the next caller.
CREATE TABLE cache_claims (
    prompt_hash char(64) PRIMARY KEY,
    claim_token uuid NOT NULL UNIQUE,
    expires_at  timestamptz NOT NULL
);

-- One row per cache hit, kept when images expire, so savings survive restarts and cleanups.
CREATE TABLE cache_hits (
    hit_id          bigserial PRIMARY KEY,
    prompt_hash     char(64) NOT NULL,
    image_id        uuid NOT NULL,
    cost_saved_usd  numeric(12, 6) NOT NULL CHECK (cost_saved_usd >= 0),
    hit_at          timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX cache_hits_hit_at_idx ON cache_hits (hit_at);
