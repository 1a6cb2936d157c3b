"""Archives: a game, a round or a player's pictures carried out of one deployment and back into
another (or the same one, after a purge or past an expiry).

- `manifest.py`: the archive's format (a zip of the originals and one JSON manifest of their
  rows) and its checks;
- `export.py`: `image-sidecar export`, streamed from the store into the zip;
- `restore.py`: `image-sidecar import`, every byte and the manifest verified before anything is
  written, then one transaction; bytes already stored are linked, not copied.

May import: `db`, `storage`, `models`, `errors`, `batch`, `images.writer` (rows and bytes
together), `images.formats`.
"""
