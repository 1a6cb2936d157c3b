"""Image sidecar for the Picture This game server: stores, serves, caches and expires AI images."""

__version__ = "0.1.0"
