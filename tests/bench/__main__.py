"""`make bench`: run every area's benchmark (or those named: `make bench BENCH_ARGS=directory`).

Needs the `wrk` load generator on PATH (Debian: `apt-get install wrk`). Refuses to start on a
busy machine (see tests/bench/machine.py). Writes its results to var/bench/ (see results.py);
`make bench BENCH_COMPARE=var/bench/bench-….json` also prints each figure against that run.
`make bench BENCH_ARGS="--cpu-only referrals"` takes only the in-process figures (CPU per request
and statements per create), without wrk or gunicorn: for checking a change to the create path
while load runs would disturb others. It still refuses a busy machine.

Exit status: 0 every check passed, 1 a check failed, 2 a usage or tooling problem, 3 refused
(the machine was busy before or during the run)."""

import argparse
import importlib
import json
import os
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path

from tests.bench import harness, machine, results, rounds

AREAS = ["directory", "referrals", "webhooks", "audit", "load", "fhir", "imports"]
BUSY = 3


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make bench")
    parser.add_argument(
        "areas", nargs="*", metavar="AREA", help=f"{', '.join(AREAS)} (default: all)"
    )
    parser.add_argument("--duration", type=int, default=5, help="seconds per load run")
    parser.add_argument(
        "--rounds",
        type=int,
        default=rounds.ROUNDS,
        help=f"interleaved rounds per path and connection count (at least {rounds.ROUNDS})",
    )
    parser.add_argument(
        "--cpu-only",
        action="store_true",
        help="referrals only: in-process CPU per request and statements per create, no load runs",
    )
    parser.add_argument("--compare", type=Path, help="an earlier run's JSON to compare with")
    parser.add_argument(
        "--results", type=Path, default=harness.ROOT / "var" / "bench", help="where JSON goes"
    )
    args = parser.parse_args(argv)
    unknown = sorted(set(args.areas) - set(AREAS))
    if unknown:
        parser.error(f"unknown area: {', '.join(unknown)}")
    if args.cpu_only and args.areas != ["referrals"]:
        parser.error("--cpu-only measures the referrals area only: name it (--cpu-only referrals)")
    if args.rounds < rounds.ROUNDS:
        parser.error(f"--rounds must be at least {rounds.ROUNDS}: a median of fewer means little")
    if args.compare is not None and not args.compare.is_file():
        parser.error(f"--compare: no such file: {args.compare}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    started = datetime.now(UTC)
    threshold = machine.max_load()
    try:
        load = machine.check_load(threshold=threshold)
    except machine.MachineBusy as busy:
        print(f"make bench refused: {busy}", file=sys.stderr)
        return BUSY
    if not args.cpu_only and shutil.which("wrk") is None:
        print("make bench needs the wrk load generator: apt-get install wrk", file=sys.stderr)
        return 2
    raised = threshold > machine.max_load({}) or machine.max_foreign() > machine.max_foreign({})
    if raised:
        print(
            "NOTE: BENCH_MAX_LOAD or BENCH_MAX_FOREIGN is raised above its default: the figures "
            "of this run may be taken under foreign load (see foreign CPU per row)."
        )
    settings = {
        "areas": args.areas or AREAS,
        "cpu_only": args.cpu_only,
        "duration_s": args.duration,
        "rounds": args.rounds,
        "extra_rounds": rounds.EXTRA_ROUNDS,
        "connections": list(rounds.CONNECTIONS),
        "max_load": threshold,
        "max_foreign_cpu": machine.max_foreign(),
        "limits_raised": raised,
        "cpu_count": machine.cpu_count(),
        "bench_database": harness.bench_database_name(),
        "gunicorn_workers": 2,
    }
    areas: dict[str, list[dict]] = {}
    for area in args.areas or AREAS:
        module = importlib.import_module(f"tests.bench.{area}")
        areas[area] = module.run(args)
    doc = results.document(
        root=harness.ROOT,
        started=started,
        load={"start": round(load, 2), "end": round(os.getloadavg()[0], 2)},
        settings=settings,
        areas=areas,
    )
    path = results.write(doc, args.results)
    print(f"\nresults: {path} (and {args.results / 'latest.json'})")
    if args.compare is not None:
        print("\n".join(results.compare(json.loads(args.compare.read_text()), doc)))
    rows = [row for area_rows in areas.values() for row in area_rows]
    if any(row.get("refused") for row in rows):
        print("some figures were refused: foreign load during the run", file=sys.stderr)
        return BUSY
    return 1 if any(row.get("ok") is False for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
