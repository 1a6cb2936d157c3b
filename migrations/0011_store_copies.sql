-- `image-sidecar migrate-store`: which files were copied, verified, to which store, so that an
-- interrupted run goes on where it stopped and a finished one has nothing left to do.
CREATE TABLE store_copies (
    target     text NOT NULL,  -- s3://bucket or file:///base/dir
    image_path text NOT NULL,
    size_bytes bigint NOT NULL,
    sha256     char(64) NOT NULL,
    copied_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (target, image_path)
);
