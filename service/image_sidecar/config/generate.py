"""Write (or `--check`) the files generated from the settings table (config/table.py):

- service/image_sidecar/config/sections.py: the frozen dataclasses, one per section;
- docs/configuration.md: the reference of every setting;
- .env.example: every setting with its help and default, then the compose stack's own.

    python -m image_sidecar.config.generate          # rewrite what is stale
    python -m image_sidecar.config.generate --check  # exit 1 naming what is stale
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

from image_sidecar.config.table import NESTED, SECTIONS, SETTINGS, Setting, class_name

ROOT = Path(__file__).resolve().parents[3]

# Read by docker-compose.yml, not by the sidecar: documented in .env.example after its settings.
COMPOSE_ONLY = (
    (
        "POSTGRES_PASSWORD",
        "Password of the stack's PostgreSQL user `sidecar` (DATABASE_URL is built from it).",
    ),
    ("GRAFANA_ADMIN_PASSWORD", "Grafana's admin password."),
)
_GENERATED = "Generated from service/image_sidecar/config/table.py by "
_COMMAND = "`python -m image_sidecar.config.generate`"


def _in_section(section: str) -> list[Setting]:
    return [setting for setting in SETTINGS if setting.section == section]


def render_sections() -> str:
    lines = [
        '"""The settings, one frozen dataclass per section.',
        "",
        f"{_GENERATED}{_COMMAND}:",
        'edit the table, not this file."""',
        "",
        "from __future__ import annotations",
        "",
        "from dataclasses import dataclass, field",
        "from pathlib import Path",
        "from typing import Literal",
        "",
        "from image_sidecar.config.table import default",
        "from image_sidecar.lifecycle.cron import CronSchedule",
        "from image_sidecar.prompt_cache.costs import GenerationCosts",
        "",
        "__all__ = [",
        *(f'    "{name}",' for name in sorted(["Config", *map(class_name, (*NESTED, *SECTIONS))])),
        "]",
    ]
    for section in (*NESTED, *SECTIONS):
        lines += ["", "", "@dataclass(frozen=True)", f"class {class_name(section)}:"]
        for setting in _in_section(section):
            lines.append(
                f'    {setting.field}: {setting.kind.annotation} = default("{setting.name}")'
            )
        for nested, parent in NESTED.items():
            if parent == section:
                lines.append(
                    f"    {nested}: {class_name(nested)} = "
                    f"field(default_factory={class_name(nested)})"
                )
    lines += ["", "", "@dataclass(frozen=True)", "class Config:"]
    lines += [
        f"    {section}: {class_name(section)} = field(default_factory={class_name(section)})"
        for section in SECTIONS
    ]
    return "\n".join(lines) + "\n"


def _shown_default(setting: Setting) -> str:
    return f"`{setting.default}`" if setting.default else "(empty)"


def render_reference() -> str:
    lines = [
        "# Configuration",
        "",
        f"<!-- {_GENERATED}{_COMMAND}. -->",
        "",
        "Every setting is an environment variable, also read from `.env` in the working "
        "directory (the environment wins); `.env.example` lists them all. A bad value stops "
        "start-up with a message naming the variable and what it expects.",
    ]
    for section in (*SECTIONS[:3], *NESTED, *SECTIONS[3:]):
        lines += [
            "",
            f"## {section}",
            "",
            "| variable | default | expects | meaning |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| `{s.name}` | {_shown_default(s)} | {s.expects} | {s.help} |"
            for s in _in_section(section)
        ]
    return "\n".join(lines) + "\n"


def _comment(text: str) -> list[str]:
    return textwrap.wrap(text, width=98, initial_indent="# ", subsequent_indent="# ")


# What a copy of this file must set (docs/operations.md): secrets with no default.
_TO_SET = frozenset({"IMAGE_SIDECAR_API_TOKEN"})


def render_env_example() -> str:
    """Every setting at its default, commented out: a copy of this file changes nothing but
    what is uncommented (so compose's own defaults, such as pictures through nginx, hold)."""
    lines = [
        "# Image sidecar configuration. Copy to .env; the process environment overrides this file.",
        f"# {_GENERATED}",
        f"# {_COMMAND}. The sidecar reads every variable in this first part; each is shown at",
        "# its default, commented out: uncomment what you change. docker compose reads this file",
        "# too, and `image-sidecar dev` in this folder says at start which variables it took.",
    ]
    for setting in SETTINGS:
        line = f"{setting.name}={setting.default}"
        lines += ["", *_comment(setting.help), line if setting.name in _TO_SET else f"# {line}"]
    lines += ["", "# --- docker compose only: read by docker-compose.yml, not by the sidecar ---"]
    for name, help_text in COMPOSE_ONLY:
        lines += ["", *_comment(help_text), f"{name}="]
    return "\n".join(lines) + "\n"


GENERATED: dict[Path, Callable[[], str]] = {
    ROOT / "service" / "image_sidecar" / "config" / "sections.py": render_sections,
    ROOT / "docs" / "configuration.md": render_reference,
    ROOT / ".env.example": render_env_example,
}


def stale_files() -> list[Path]:
    return [
        path
        for path, render in GENERATED.items()
        if not path.is_file() or path.read_text(encoding="utf-8") != render()
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only say what is stale")
    args = parser.parse_args(argv)
    stale = stale_files()
    for path in stale:
        if args.check:
            sys.stderr.write(f"stale: {path.relative_to(ROOT)} (run {_COMMAND})\n")
        else:
            path.write_text(GENERATED[path](), encoding="utf-8")
            sys.stderr.write(f"wrote {path.relative_to(ROOT)}\n")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
