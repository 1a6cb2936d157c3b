"""The docs: the layout page names every module and folder of the package and nothing that is
gone, every link of the README and docs/ resolves, the generated pages are current."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from image_sidecar.config import generate

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "service" / "image_sidecar"
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _layout_block() -> str:
    layout = (ROOT / "docs" / "layout.md").read_text(encoding="utf-8")
    return layout.split("```", 2)[1]


def test_the_layout_page_matches_the_package_tree():
    block = _layout_block()
    under_package = block.split("service/image_sidecar/", 1)[1].split("\nmigrations/", 1)[0]
    named = set(re.findall(r"^  (\S+?)/?\s", under_package, flags=re.MULTILINE))
    on_disk = {
        path.name
        for path in PACKAGE.iterdir()
        if (path.suffix == ".py" and path.stem not in ("__init__", "__main__"))
        or (path.is_dir() and not path.name.startswith(("__", ".")))  # packages and templates/
    }
    assert named == on_disk


def test_the_layout_page_names_only_top_level_folders_that_exist():
    block = _layout_block()
    for folder in re.findall(r"^(\S+)/\s", block, flags=re.MULTILINE):
        assert (ROOT / folder).is_dir(), folder


def test_every_subject_folder_says_what_lives_there():
    for folder in PACKAGE.iterdir():
        init = folder / "__init__.py"
        if folder.is_dir() and init.exists():
            assert init.read_text(encoding="utf-8").startswith('"""'), folder.name


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_relative_link_resolves(page):
    text = page.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if target.startswith(("http://", "https://", "mailto:", "#")):
            continue
        assert (page.parent / target.split("#", 1)[0]).exists(), f"{page.name}: {target}"


def test_the_readme_is_the_door_and_docs_are_the_rooms():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) < 300
    linked = set(re.findall(r"\]\(docs/([^)#]+)\)", readme))
    assert linked == {page.name for page in PAGES[1:] if page.suffix == ".md"}


def test_the_files_generated_from_the_settings_table_are_current():
    stale = generate.stale_files()
    assert not stale, f"stale: {stale}; run python -m image_sidecar.config.generate"
