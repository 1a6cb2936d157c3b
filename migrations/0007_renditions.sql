-- Web renditions: small WebP (and AVIF) versions of each picture, stored beside its original
-- (game-.../round-n/player-{id}.{name}.{format}); they go with their image.
CREATE TABLE image_renditions (
    image_id      uuid NOT NULL REFERENCES generated_images (image_id) ON DELETE CASCADE,
    name          text NOT NULL CHECK (name IN ('thumb', 'large')),
    format        text NOT NULL CHECK (format IN ('webp', 'avif')),
    image_path    text NOT NULL UNIQUE,
    content_type  text NOT NULL,
    width         integer NOT NULL CHECK (width > 0),
    height        integer NOT NULL CHECK (height > 0),
    size_bytes    integer NOT NULL CHECK (size_bytes > 0),
    PRIMARY KEY (image_id, name, format)
);

-- A BlurHash of the picture, painted by the game before any bytes arrive.
ALTER TABLE generated_images ADD COLUMN placeholder text;
