"""`make verify`: the API proved from the outside, by tools nobody on this project wrote, against
the real stack (gunicorn with 2 workers, PostgreSQL, a Celery worker, Redis), and the README
followed word for word on a fresh clone, up to the docs pages in Chromium under `make run`.

    python -m tests.verify                 # every check
    python -m tests.verify spectral fuzz   # only those named

Each check prints its tool's version and its result; any failure fails the run. Reports, the
generated client, `make run`'s output and the browser screenshots land under var/verify/ (CI
artifacts).
"""

import argparse
import os
import sys
import time
import traceback

from tests.verify import contract, stack

CHECKS = ["openapi", "spectral", "fuzz", "client", "load", "readme", "faults"]
STACK_CHECKS = {"fuzz", "client", "load"}


def run_check(name: str, function, *args) -> dict:
    stack.say(f"check: {name}")
    started = time.monotonic()
    try:
        row = function(*args)
    except Exception as exc:  # a crashed check is a failed check, reported like the others
        traceback.print_exc()
        row = {"name": name, "tool": "", "ok": False, "detail": f"crashed: {exc!r}"}
    row["seconds"] = round(time.monotonic() - started, 1)
    verdict = "PASS" if row["ok"] else "FAIL"
    stack.say(f"{verdict} {row['name']} ({row['seconds']} s): {row['detail']}")
    return row


def main() -> int:
    parser = argparse.ArgumentParser(prog="make verify")
    parser.add_argument("checks", nargs="*", metavar="CHECK", help=f"any of {', '.join(CHECKS)}")
    parser.add_argument("--max-examples", type=int, default=25, help="Schemathesis, per operation")
    parser.add_argument("--max-time", type=int, default=240, help="Schemathesis time budget, s")
    parser.add_argument("--load-seconds", type=int, default=60)
    args = parser.parse_args()
    args.checks = args.checks or CHECKS
    if unknown := sorted(set(args.checks) - set(CHECKS)):
        parser.error(f"unknown checks: {', '.join(unknown)}")
    if not os.environ.get("DATABASE_URL"):
        print("DATABASE_URL is not set: run `make verify`, which provides one.", file=sys.stderr)
        return 2
    started = time.monotonic()
    rows = []
    if "openapi" in args.checks or STACK_CHECKS & set(args.checks) or "spectral" in args.checks:
        rows.append(run_check("openapi", contract.generate))
    if "spectral" in args.checks:
        rows.append(run_check("spectral", contract.spectral))
    if "readme" in args.checks:
        from tests.verify import tools

        tools.ensure_chromium()
    if STACK_CHECKS & set(args.checks):
        with stack.running_stack(os.environ["DATABASE_URL"]) as running:
            if "fuzz" in args.checks:
                rows.append(
                    run_check(
                        "fuzz", contract.schemathesis, running, args.max_examples, args.max_time
                    )
                )
            if "client" in args.checks:
                from tests.verify import client

                rows.append(run_check("client", client.partner_flow, running))
            if "load" in args.checks:
                from tests.bench import load

                rows.append(run_check("load", load.verify, running, args.load_seconds))
    if "readme" in args.checks:
        from tests.verify import readme

        rows.append(run_check("readme", readme.newcomer))
    if "faults" in args.checks:
        from tests.verify import faults

        rows.append(run_check("faults", faults.database_down))
    print("\n== make verify")
    for row in rows:
        verdict = "PASS" if row["ok"] else "FAIL"
        print(f"  {verdict}  {row['name']:<52} {row['seconds']:>6} s  {row['tool']}")
        print(f"        {row['detail']}")
    failed = [row["name"] for row in rows if not row["ok"]]
    print(
        f"  total {time.monotonic() - started:.0f} s; {len(rows) - len(failed)} passed, "
        f"{len(failed)} failed"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
