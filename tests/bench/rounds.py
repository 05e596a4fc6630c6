"""A path against its ceiling in one run: interleaved rounds on the same gunicorn and wrk, so a
shift in the shared machine's load hits both sides alike instead of one whole side.

Per connection count, each round runs both sides back to back, in ABBA order (A B, B A, A B...)
so neither side always goes first. A round during which foreign processes used more than
BENCH_MAX_FOREIGN of the CPUs is skipped, said so, and replaced by another, up to a bounded
number of extra rounds; with fewer clean rounds than asked for, the figures are refused, not
reported. Each figure is the median over the clean rounds; each ratio is computed within a
round (A and B measured minutes apart would not share the machine's load) and reported as the
median with its spread (min–max)."""

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from tests.bench import harness
from tests.bench.machine import max_foreign

CONNECTIONS = (1, 4, 16)
ROUNDS = 3
EXTRA_ROUNDS = 3
PAUSE_AFTER_SKIP_S = 5
WARMUP_S = 2
FIGURES = ("p50_ms", "p95_ms", "rps")


@dataclass(frozen=True)
class Side:
    """One side of a comparison: `run(connections, duration)` loads it once with wrk."""

    label: str
    run: Callable[[int, int], dict]


@dataclass(frozen=True)
class Target:
    """A ratio the comparison must reach: `metric` (rps_ratio or p50_ratio) of the row at
    `connections`, at least (or at most) `bound`."""

    name: str
    metric: str
    connections: int
    bound: float
    at_least: bool = True

    def describe(self) -> str:
        return f"{'≥' if self.at_least else '≤'}{self.bound:g} at {self.connections} conn"


def abba(index: int) -> tuple[int, int]:
    """The order of the two sides in round `index`: A B, B A, A B, B A..."""
    return (0, 1) if index % 2 == 0 else (1, 0)


def threads_for(connections: int) -> int:
    return min(2, connections)


def ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def spread(values: list[float]) -> dict:
    """Median, min and max, rounded for the report."""
    return {
        "median": round(statistics.median(values), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
    }


def summarise(
    name: str,
    labels: tuple[str, str],
    connections: int,
    pairs: list[tuple[dict, dict]],
    *,
    rounds: int,
    skipped: int,
    foreign: list[float],
) -> dict:
    """One comparison row: each side's medians, the ratios of A to B round by round, or a
    refusal when fewer than `rounds` rounds were clean."""
    row: dict = {
        "name": f"{name}, {connections} conn",
        "kind": "comparison",
        "labels": list(labels),
        "connections": connections,
        "rounds": len(pairs),
        "skipped_rounds": skipped,
    }
    if foreign:
        row["foreign_cpu_max"] = round(max(foreign), 3)
    if len(pairs) < rounds:
        row.update(refused=True, ok=None)
        return row
    for index, label in enumerate(labels):
        for figure in FIGURES:
            row[f"{label}_{figure}"] = round(
                statistics.median(pair[index][figure] for pair in pairs), 2
            )
    rps = [ratio(a["rps"], b["rps"]) for a, b in pairs]
    if None not in rps:
        found = spread(rps)
        row.update(
            rps_ratio=found["median"], rps_ratio_min=found["min"], rps_ratio_max=found["max"]
        )
    if connections == 1:
        p50 = [ratio(a["p50_ms"], b["p50_ms"]) for a, b in pairs]
        if None not in p50:
            found = spread(p50)
            row.update(
                p50_ratio=found["median"], p50_ratio_min=found["min"], p50_ratio_max=found["max"]
            )
    row["per_round"] = [
        {
            **{label: {f: pair[i][f] for f in FIGURES} for i, label in enumerate(labels)},
            "foreign_cpu": round(share, 3),
        }
        for pair, share in zip(pairs, foreign, strict=True)
    ]
    failures = sum(side["non_2xx"] + side["errors"] for pair in pairs for side in pair)
    row["failed_requests"] = failures
    row["ok"] = failures == 0
    return row


def target_row(comparison: dict, target: Target) -> dict:
    """PASS or FAIL of `target` on the median ratio of a comparison row (refused with it)."""
    row: dict = {
        "name": target.name,
        "kind": "target",
        "target": target.describe(),
    }
    value = comparison.get(target.metric)
    if comparison.get("refused") or value is None:
        row.update(refused=True, ok=None)
        return row
    row.update(
        ratio=value,
        ratio_min=comparison[f"{target.metric}_min"],
        ratio_max=comparison[f"{target.metric}_max"],
        ok=value >= target.bound if target.at_least else value <= target.bound,
    )
    return row


def interleave(
    name: str,
    a: Side,
    b: Side,
    *,
    account,
    duration: int,
    rounds: int = ROUNDS,
    connections: tuple[int, ...] = CONNECTIONS,
    targets: tuple[Target, ...] = (),
    limit: float | None = None,
    extra_rounds: int = EXTRA_ROUNDS,
    sleep=time.sleep,
    say=print,
) -> list[dict]:
    """Compare A with B at each connection count; returns the comparison rows, then the
    target rows. `account.measure(run)` gives (wrk figures, foreign CPU share)."""
    limit = max_foreign() if limit is None else limit
    sides = (a, b)
    say(f"  {name}: {a.label} vs {b.label}")
    for side in sides:
        side.run(16, min(WARMUP_S, duration))  # connections, caches, prepared statements
    rows: list[dict] = []
    busy = False
    for conns in connections:
        pairs: list[tuple[dict, dict]] = []
        foreign: list[float] = []
        skipped = 0
        attempt = 0
        while not busy and len(pairs) < rounds and attempt < rounds + extra_rounds:
            results: list[dict] = [{}, {}]
            worst = 0.0
            for index in abba(attempt):
                results[index], share = account.measure(
                    lambda side=sides[index], conns=conns: side.run(conns, duration)
                )
                worst = max(worst, share)
            attempt += 1
            if worst <= limit:
                pairs.append((results[0], results[1]))
                foreign.append(worst)
                continue
            skipped += 1
            say(
                f"    {conns} conn, round {attempt}: foreign processes used {worst:.0%} of the "
                f"CPUs (limit {limit:.0%}): round skipped"
            )
            sleep(PAUSE_AFTER_SKIP_S)
        row = summarise(
            name,
            (a.label, b.label),
            conns,
            pairs,
            rounds=rounds,
            skipped=skipped,
            foreign=foreign,
        )
        if row.get("refused"):
            busy = True  # the machine stayed busy: no point loading it further for this path
            say(f"    {conns} conn: only {len(pairs)} of {rounds} rounds clean: refused")
        else:
            say(f"    {conns} conn: {len(pairs)} rounds kept, {skipped} skipped")
        rows.append(row)
    by_connections = {row["connections"]: row for row in rows}
    for target in targets:
        rows.append(target_row(by_connections.get(target.connections, {"refused": True}), target))
    return rows


def clean_samples(
    run: Callable[[], dict],
    *,
    account,
    wanted: int,
    limit: float | None = None,
    extra: int = EXTRA_ROUNDS,
    sleep=time.sleep,
) -> tuple[list[dict], int]:
    """Up to `wanted` results of `run()` taken while foreign processes used at most `limit` of
    the CPUs, in at most `wanted + extra` tries; returns them and how many were skipped. Fewer
    than `wanted` means the machine stayed busy."""
    limit = max_foreign() if limit is None else limit
    kept: list[dict] = []
    skipped = 0
    while len(kept) < wanted and len(kept) + skipped < wanted + extra:
        result, share = account.measure(run)
        if share <= limit:
            kept.append(result)
        else:
            skipped += 1
            sleep(PAUSE_AFTER_SKIP_S)
    return kept, skipped


def wrk_side(label: str, url: str, **options) -> Side:
    """A side that loads `url` with harness.wrk and these options."""

    def run(connections: int, duration: int) -> dict:
        return harness.wrk(
            url,
            connections=connections,
            threads=threads_for(connections),
            duration=duration,
            **options,
        )

    return Side(label, run)
