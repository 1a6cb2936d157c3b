"""The benchmark's report: the scenarios' table, the game nights, and the JSON under results/."""

from __future__ import annotations

import json
import os
import platform
import statistics
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from bench.game_night import (
    BURST_OTHERS_P95_MS,
    P95_BOUND_MS,
    PLAYERS,
    ROUNDS,
    UPLOAD_TIMEOUT_S,
    WAITED,
    Night,
)
from bench.measure import Scenario, Size
from bench.memory import ROLES, RoleMemory, total_mb
from bench.store_scale import ScaleRow, table
from bench.upload_profile import rows as upload_rows

RESULTS = Path(__file__).resolve().parent / "results"


def report(
    scenarios: list[Scenario],
    nights: list[Night],
    cpu: dict[str, float],
    steps: dict[str, dict[str, float | None]],
    size: Size,
    scale: list[ScaleRow],
    *,
    quick: bool,
) -> None:
    machine = f"{os.cpu_count()} cores, {platform.platform()}"
    mode = "quick" if quick else "full"
    print(
        f"\n{mode} run, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {machine}, {size.rounds} round(s)"
    )
    if scenarios:
        print("\n".join(_scenario_rows(scenarios)))
    print("\nan upload's picture work, step by step, in one process (bench/upload_profile.py)\n")
    print("\n".join(upload_rows(steps)))
    print("\nservice CPU per operation, each kind alone (ms)\n")
    print("| operation | CPU ms |\n|---|---|")
    for name, ms in cpu.items():
        print(f"| {name} | {ms:.1f} |")
    print(
        f"\ngame nights ({PLAYERS} players x {ROUNDS} rounds a game; a night passes with 0 errors "
        f"and every operation's p95 <= {P95_BOUND_MS} ms at real pacing; at burst pacing, uploads "
        f"within the game server's {UPLOAD_TIMEOUT_S} s upload timeout and the other operations "
        f"<= {BURST_OTHERS_P95_MS} ms; long-poll waits reported apart)\n"
    )
    print("\n".join(_night_rows(nights)))
    best: dict[tuple[str, str, str], int] = {}
    for night in nights:
        key = (night.pacing, night.topology, night.originals)
        best.setdefault(key, 0)
        if night.ok:
            best[key] = max(best[key], night.games)
    print("\nlargest night that passed (and the service's CPU per upload of such an original):")
    for (pacing, topology, originals), games in best.items():
        upload = cpu.get(f"upload of an AI-sized {originals} original")
        per_upload = f" ({upload:.0f} ms an upload)" if upload is not None else ""
        print(f"- {pacing} pacing, {topology}, {originals} originals: {games} games{per_upload}")
    print("\n".join(_memory_rows(nights)))
    if scale:
        print("\nthe store at N and 10·N images (cost(10·N) / cost(N))\n")
        print("\n".join(table(scale, size.scale_images)))
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{datetime.now(UTC):%Y%m%dT%H%M%S}{'-quick' if quick else ''}.json"
    path.write_text(
        json.dumps(
            {
                "quick": quick,
                "size": asdict(size),
                "scenarios": [asdict(s) | {"ratio": s.ratio, "met": s.met} for s in scenarios],
                "cpu_ms_per_operation": cpu,
                "upload_steps_cpu_ms": steps,
                "game_nights": [night.summary() for night in nights],
                "store_scale": [asdict(row) | {"ratio": row.ratio} for row in scale],
            },
            indent=2,
        )
    )
    print(f"\n(results: bench/results/{path.name})")


def _scenario_rows(scenarios: list[Scenario]) -> list[str]:
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
    return rows


_OPERATIONS = ("lookup", "upload", "listing", "picture", "replay")


# A second night may leave the sidecar's RSS this much above the first's (allocator noise), and
# no more: beyond it, memory grows with the games played.
FLAT_WITHIN = 0.03


def _memory_rows(nights: list[Night]) -> list[str]:
    """The sidecar's RSS by role before and after each night (MB: processes x largest, then
    all of them), and whether the second night of one size left it where the first did."""

    def cell(memory: dict[str, RoleMemory], role: str) -> str:
        got = memory.get(role)
        return f"{got.processes} x {got.largest_mb:.0f}" if got else "-"

    rows = [
        "\nthe sidecar's memory (RSS, MB; shared pages counted in each process), "
        "before -> after each night\n",
        "| night | " + " | ".join(ROLES) + " | all |",
        "|---" * (len(ROLES) + 2) + "|",
    ]
    for night in nights:
        label = f"{night.pacing}, {night.topology}, {night.originals}, {night.games}"
        label += " (again)" if night.again else ""
        before, after = night.memory_before, night.memory_after
        cells = [f"{cell(before, role)} -> {cell(after, role)}" for role in ROLES]
        total = f"{total_mb(before):.0f} -> {total_mb(after):.0f}"
        rows.append(f"| {label} | " + " | ".join(cells) + f" | {total} |")
    again = next((n for n in nights if n.again), None)
    if again is not None:
        first, second = total_mb(again.memory_before), total_mb(again.memory_after)
        growth = second - first
        verdict = "flat" if growth <= first * FLAT_WITHIN else "GREW"
        rows.append(
            f"\nacross the second night of {again.games} games: {first:.0f} -> {second:.0f} MB "
            f"({growth:+.0f} MB, {growth * 1024 / again.games:+.0f} KB a game): {verdict} "
            f"(within {FLAT_WITHIN:.0%})"
        )
    return rows


def _night_rows(nights: list[Night]) -> list[str]:
    rows = [
        "| pacing | topology | originals | games | passed | errors | paid / prompts | "
        + " | ".join(f"{op} p50/p95/p99 ms" for op in _OPERATIONS)
        + f" | {WAITED} p95 | CPU s per game: sidecar, PostgreSQL, nginx, load |",
        "|---|---|---|---|---|---|---|" + "---|" * (len(_OPERATIONS) + 2),
    ]
    for night in nights:
        ops = night.summary()["operations"]
        assert isinstance(ops, dict)

        def cell(name: str, ops: dict = ops) -> str:
            if name not in ops:
                return "-"
            o = ops[name]
            return f"{o['p50_ms']:.0f} / {o['p95_ms']:.0f} / {o['p99_ms']:.0f}"

        cpu = night.cpu_seconds
        per_game = ", ".join(
            f"{cpu.get(k, 0) / night.games:.2f}"
            for k in ("sidecar", "postgres", "nginx", "load generator")
        )
        errors = sum(night.errors.values())
        again = " (again)" if night.again else ""
        rows.append(
            f"| {night.pacing} | {night.topology} | {night.originals} | {night.games}{again} | "
            f"{'yes' if night.ok else 'no'} | {errors} | {night.paid} / {len(night.prompts)} | "
            + " | ".join(cell(op) for op in _OPERATIONS)
            + f" | {night.p(0.95, WAITED):.0f} ms | {per_game} |"
        )
    return rows
