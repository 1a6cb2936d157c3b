"""The benchmark's report: the scenarios' table, the game nights, and the JSON under results/."""

from __future__ import annotations

import json
import os
import platform
import statistics
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from bench.game_night import PLAYERS, ROUNDS, Night
from bench.measure import Scenario, Size

RESULTS = Path(__file__).resolve().parent / "results"


def report(scenarios: list[Scenario], nights: list[Night], size: Size, *, quick: bool) -> None:
    rows = ["| scenario | ours | baseline | ratio | target | met |", "|---|---|---|---|---|---|"]
    for s in scenarios:
        ours, base = s.median(s.ours), s.median(s.baseline)
        p99 = statistics.median(m.p99_ms for m in s.ours) if s.ours[0].p99_ms else None
        base_p99 = statistics.median(m.p99_ms for m in s.baseline) if s.baseline[0].p99_ms else None
        tail = f", p99 {p99:.0f} ms" if p99 else ""
        base_tail = f", p99 {base_p99:.0f} ms" if base_p99 else ""
        rows.append(
            f"| {s.name} | {ours:,.1f} {s.unit}{tail} | {base:,.1f} {s.unit}{base_tail} | "
            f"{s.ratio:.2f} | {s.target} | {'yes' if s.met else 'no'} |"
        )
    machine = f"{os.cpu_count()} cores, {platform.platform()}"
    mode = "quick" if quick else "full"
    print(
        f"\n{mode} run, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {machine}, {size.rounds} round(s)"
    )
    print("\n".join(rows))
    print(
        f"\ngame nights ({PLAYERS} players x {ROUNDS} rounds a game; target: 120 games, "
        "0 errors, p95 <= 250 ms)\n"
    )
    print(
        "| games | paid generations / distinct prompts | errors | p95 | lookup p95 | "
        "upload p95 | listing p95 | picture p95 |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for night in nights:
        ops = night.summary()["operations"]

        def p95(name: str, ops: dict = ops) -> str:
            return f"{ops[name]['p95_ms']:.0f} ms" if name in ops else "-"

        print(
            f"| {night.games} | {night.paid} / {len(night.prompts)} | "
            f"{sum(night.errors.values())} | {night.p(0.95):.0f} ms | {p95('lookup')} | "
            f"{p95('upload')} | {p95('listing')} | {p95('picture')} |"
        )
    passed = [night.games for night in nights if night.ok]
    print(f"\nlargest game night with 0 errors and p95 <= 250 ms: {max(passed, default=0)} games")
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{datetime.now(UTC):%Y%m%dT%H%M%S}{'-quick' if quick else ''}.json"
    path.write_text(
        json.dumps(
            {
                "quick": quick,
                "size": asdict(size),
                "scenarios": [asdict(s) | {"ratio": s.ratio, "met": s.met} for s in scenarios],
                "game_nights": [night.summary() for night in nights],
            },
            indent=2,
        )
    )
    print(f"\n(results: bench/results/{path.name})")
