# Shortcuts; README.md has the one-line commands these wrap.
.PHONY: install dev test lint fix bench settings

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
	python -m bench

# Regenerate config/sections.py, docs/configuration.md and .env.example from the settings table.
settings:
	python -m image_sidecar.config.generate
