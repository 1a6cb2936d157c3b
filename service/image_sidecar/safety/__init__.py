"""Trust and safety: pictures taken down everywhere, and the CDN told.

- `moderation.py`: the moderation hook every upload is reviewed by (IMAGE_MODERATION_URL);
- `takedown.py`: a picture's bytes and look-alikes blocked, every record holding them deleted
  (with `similar`, the stored look-alikes too);
- `lookalikes.py`: each worker's copy of the blocked look-alike hashes, and the upload's check;
- `webhooks.py`: the purge notice to a CDN (a JSON POST, retried, bounded, logged).

The blocklist's SQL is `db/blocklist.py`; an upload consults it in `images/upload.py`.
May import: `db`, `storage`, `models`, `errors`, `appkeys`, `lifecycle`, `images.decoding`
(the takedown hashes the picture in the picture pool).
"""
