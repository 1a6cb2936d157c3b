"""Image records and their pictures: the one writer, where files go, decoding, listings.

- `writer.py`: `register`, the one writer of image records (rows and bytes, all or nothing),
  with a source for where the bytes come from: `upload.NewImage` here, a cache hit's
  `prompt_cache.reuse.CacheReuse`;
- `upload.py`: an upload as a source (reviewed by the moderation hook while it is decoded,
  refused if blocked), and its use case (a refused upload gives its claim back);
- `keys.py`: the storage key layout (where an image and its renditions are stored);
- `formats.py`: the accepted image types, sniffed from their bytes;
- `decoding.py`: decoding every upload and making its renditions (Pillow);
- `pool.py`: the bounded pool of picture processes that runs decoding's work (ImageProcessor);
- `likeness.py`: perceptual hashes (what a picture looks like), made in the same decode;
- `listing.py`: reading a round, a game, one player's picture;
- `describe.py`: describing a picture saved before its sentence;
- `backfill.py`: renditions for the images stored before renditions existed.

May import: `db`, `storage`, `models`, `errors`, `batch`, `appkeys`, `log` (the picture
processes log as the replica does), `prompt_cache.prompts` and
`prompt_cache.costs` (the hash and prices an upload records), `prompt_cache.lookup` (a refused
upload's claim given back), `safety.moderation` and `safety.lookalikes` (what reviews and
refuses an upload). Not `api`, nor any other subject.
"""
