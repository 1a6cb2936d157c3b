"""The prompt cache: never pay twice for one prompt.

- `prompts.py`: the canonical prompt and its hash (the Node client computes the same);
- `lookup.py`: a lookup's hit, miss (a single-flight claim) or pending, waits, claims given
  back, entries read or forgotten;
- `reuse.py`: a hit registered as a player's picture (a source for `images.writer`), and the
  lookup that registers in the same call;
- `hits.py`: counting hits and the money they saved;
- `costs.py`: what an AI call costs per service.

May import: `db`, `storage`, `models`, `errors`, and `images` (a reuse is written by the one
writer). `prompts.py` and `costs.py` import nothing of the package: `images` and `config` use
them.
"""
