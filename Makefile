# Shortcuts; README.md has the one-line commands these wrap.
.PHONY: install dev test lint fix bench

install:
	pip install -e '.[dev]'

dev:
	image-sidecar dev

test:
	pytest

lint:
	ruff check .
	ruff format --check service tests testkit bench
	mypy

fix:
	ruff check --fix .
	ruff format service tests testkit bench

bench:
	python -m bench.cleanup_backlog
	python -m bench.serve_images
