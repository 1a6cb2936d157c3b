-- One cleanup at a time across replicas, also through PgBouncer in transaction mode (where a
-- session advisory lock would stay behind on a pooled server connection): a lease its holder
-- renews while it runs and that lapses by itself if the holder dies.
CREATE TABLE cleanup_lease (
    only_row   boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    holder     uuid NOT NULL,
    expires_at timestamptz NOT NULL
);
