"""Trust and safety: pictures taken down everywhere, and the CDN told.

- `takedown.py`: a picture's bytes blocked and every record holding them deleted;
- `webhooks.py`: the purge notice to a CDN (a JSON POST, retried, bounded, logged).

The blocklist's SQL is `db/blocklist.py`; an upload consults it in `images/upload.py`.
May import: `db`, `storage`, `models`, `errors`, `lifecycle.deletion`.
"""
