"""What the tests and the benchmarks share, so that neither imports the other's modules.

- `database.py`: a synchronous peek into the database, and `expire_images`;
- `seeding.py`: many stored images (rows and files) at once, for cleanup tests and benchmarks;
- `images.py`: sample pictures, from 8 px PNGs to AI-sized noise and drawings;
- `helpers.py`: valid upload fields, an uploader, free ports, sidecar processes, real tools;
- `cache.py`: the prompt cache's calls as a game server makes them;
- `nginx.py`: the shipped nginx configuration, run in front of a sidecar;
- `contract.py`: every JSON response checked against openapi.json.
"""
