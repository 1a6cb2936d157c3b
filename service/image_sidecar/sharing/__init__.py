"""Replay and sharing: the judge's pick, share links, what a share shows and downloads.

- `winners.py`: the judge's pick of a round;
- `links.py`: share links made and revoked, and a live share's gallery;
- `downloads.py`: a share's originals, one or all (the handler streams the zip).

The pages themselves (templates, headers, the zip stream) are `api/gallery.py`.
May import: `db`, `storage`, `models`, `errors`.
"""
