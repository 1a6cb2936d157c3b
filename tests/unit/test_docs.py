"""The README's layout section names every module of the package, and nothing that is gone."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "service" / "image_sidecar"


def _layout_block() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Layout", 1)[1]
    return section.split("```", 2)[1]


def test_the_readme_layout_matches_the_package_tree():
    block = _layout_block()
    under_package = block.split("service/image_sidecar/", 1)[1].split("\ndeploy/", 1)[0]
    named = set(re.findall(r"^  (\S+?)/?\s", under_package, flags=re.MULTILINE))
    on_disk = {
        path.name
        for path in PACKAGE.iterdir()
        if (path.suffix == ".py" and path.stem not in ("__init__", "__main__"))
        or (path.is_dir() and not path.name.startswith(("__", ".")))  # packages and templates/
    }
    assert named == on_disk


def test_the_readme_layout_names_only_top_level_folders_that_exist():
    block = _layout_block()
    for folder in re.findall(r"^(\S+)/\s", block, flags=re.MULTILINE):
        assert (ROOT / folder).is_dir(), folder
