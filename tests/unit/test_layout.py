"""The house rules of the code (docs/layout.md), checked: module sizes, who may import whom,
no circle in the package's imports, no store type tested outside storage/."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "service" / "image_sidecar"
MAX_LINES = 400


def _modules(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*.py") if "egg-info" not in str(path))


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(tree: ast.Module, known: set[str]) -> set[str]:
    """Modules of the package a module imports when it runs (TYPE_CHECKING blocks aside)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in known)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in known else node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found & known


def _import_graph() -> dict[str, set[str]]:
    paths = {_module_name(path): path for path in _modules(PACKAGE)}
    known = set(paths)
    return {
        name: _imported(ast.parse(path.read_text(encoding="utf-8")), known) - {name}
        for name, path in paths.items()
    }


def test_no_module_is_over_400_lines():
    too_long = [
        f"{path.relative_to(ROOT)} ({count} lines)"
        for folder in (PACKAGE, ROOT / "bench", ROOT / "testkit")
        for path in _modules(folder)
        if (count := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    ]
    assert too_long == []


def test_the_package_imports_have_no_circle():
    graph = _import_graph()
    state: dict[str, str] = {}
    circles: list[list[str]] = []

    def walk(name: str, trail: list[str]) -> None:
        state[name] = "open"
        for target in sorted(graph[name]):
            if state.get(target) == "open":
                circles.append([*trail[trail.index(target) :], target])
            elif target not in state:
                walk(target, [*trail, target])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            walk(name, [name])
    assert circles == []


def test_the_import_check_finds_a_circle_when_there_is_one():
    tree = ast.parse("from image_sidecar.b import thing\nimport image_sidecar.c\n")
    assert _imported(tree, {"image_sidecar.b", "image_sidecar.c"}) == {
        "image_sidecar.b",
        "image_sidecar.c",
    }
    guarded = ast.parse("if TYPE_CHECKING:\n    from image_sidecar.b import thing\n")
    assert _imported(guarded, {"image_sidecar.b"}) == set()


def test_tests_and_benchmarks_share_testkit_never_each_others_modules():
    offenders = []
    for folder, banned in ((ROOT / "tests", r"tests\."), (ROOT / "bench", r"tests\b")):
        for path in _modules(folder):
            text = path.read_text(encoding="utf-8")
            if re.search(rf"^\s*(from|import) {banned}", text, flags=re.MULTILINE):
                offenders.append(str(path.relative_to(ROOT)))
    for path in _modules(ROOT / "testkit"):
        if re.search(r"^\s*(from|import) (tests|bench)\b", path.read_text(), flags=re.MULTILINE):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_no_store_type_is_tested_outside_storage():
    offenders = [
        str(path.relative_to(ROOT))
        for path in _modules(PACKAGE)
        if "storage" not in path.relative_to(PACKAGE).parts
        and re.search(r"isinstance\([^)]*BlobStore\)", path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_only_db_imports_the_driver():
    offenders = [
        str(path.relative_to(ROOT))
        for path in _modules(PACKAGE)
        if "db" not in path.relative_to(PACKAGE).parts
        and re.search(r"^\s*(import|from) (aiopg|psycopg2)\b", path.read_text(), re.MULTILINE)
    ]
    assert offenders == []


def test_every_subpackage_is_in_the_wheel():
    """pyproject.toml lists the packages the wheel (and so the container) holds: a new folder
    missing from it works from a checkout and fails in the image."""
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    folders = {
        ".".join(("image_sidecar", *init.parent.relative_to(PACKAGE).parts))
        for init in PACKAGE.rglob("__init__.py")
    }
    assert folders - listed == set()
