-- Every upload is decoded; its displayed size (EXIF orientation applied) is kept. Images stored
-- before keep NULL until the renditions backfill reads them.
ALTER TABLE generated_images ADD COLUMN width integer CHECK (width > 0),
                             ADD COLUMN height integer CHECK (height > 0);
