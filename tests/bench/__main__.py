"""`make bench`: run every area's benchmark (or those named: `make bench BENCH_ARGS=directory`).

Needs the `wrk` load generator on PATH (Debian: `apt-get install wrk`)."""

import argparse
import importlib
import shutil
import sys

AREAS = ["directory", "referrals", "webhooks", "audit", "load"]


def main() -> int:
    parser = argparse.ArgumentParser(prog="make bench")
    parser.add_argument(
        "areas", nargs="*", metavar="AREA", help=f"{', '.join(AREAS)} (default: all)"
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds per load run")
    args = parser.parse_args()
    unknown = sorted(set(args.areas) - set(AREAS))
    if unknown:
        parser.error(f"unknown area: {', '.join(unknown)}")
    if shutil.which("wrk") is None:
        print("make bench needs the wrk load generator: apt-get install wrk", file=sys.stderr)
        return 2
    failed = False
    for area in args.areas or AREAS:
        module = importlib.import_module(f"tests.bench.{area}")
        rows = module.run(args)
        failed |= any(row.get("ok") is False for row in rows)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
