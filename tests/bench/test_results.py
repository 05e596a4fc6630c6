"""`make bench`'s JSON results and BENCH_COMPARE, and its refusal to start on a busy machine."""

import json
import os
import subprocess
from datetime import UTC, datetime

from tests.bench import harness, results
from tests.servers import run_python


def run_document(areas, *, load=0.4, started=datetime(2026, 11, 29, 14, 5, 9, tzinfo=UTC)):
    return results.document(
        root=harness.ROOT,
        started=started,
        load={"start": load, "end": 1.2},
        settings={"cpu_count": 2, "rounds": 3},
        areas=areas,
    )


def test_write_stores_a_timestamped_file_and_latest_json(tmp_path):
    doc = run_document({"directory": [{"name": "search, 16 conn", "rps_ratio": 0.61}]})
    path = results.write(doc, tmp_path / "bench")
    assert path.name == "bench-20261129T140509Z.json"
    stored = json.loads(path.read_text())
    assert stored == json.loads((tmp_path / "bench" / "latest.json").read_text())
    assert stored["areas"]["directory"][0]["rps_ratio"] == 0.61
    assert stored["load_average"] == {"start": 0.4, "end": 1.2}
    assert stored["cpu_count"] == 2 and stored["settings"]["rounds"] == 3
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=harness.ROOT, capture_output=True, text=True
    ).stdout.strip()
    assert stored["git"]["commit"] == commit and len(commit) == 40
    assert sorted(p.name for p in (tmp_path / "bench").iterdir()) == [
        "bench-20261129T140509Z.json",
        "latest.json",
    ]


def test_figures_are_the_numbers_of_every_row_not_flags_or_text():
    doc = run_document(
        {"referrals": [{"name": "create, 16 conn", "rps_ratio": 0.3, "ok": True, "labels": ["a"]}]}
    )
    assert list(results.figures(doc)) == [("referrals", "create, 16 conn", "rps_ratio")]


def test_compare_prints_each_figure_as_a_ratio_and_calls_out_regressions():
    old = run_document(
        {
            "directory": [
                {"name": "search, 1 conn", "api_p50_ms": 4.0, "rps_ratio": 0.6, "p50_ratio": 1.6},
                {"name": "gone", "rounds": 3},
            ],
            "referrals": [
                {"name": "create / bare INSERTs", "kind": "target", "target": "≥0.5 at 16 conn",
                 "ratio": 0.5},
                {"name": "in-process CPU per create (ms)", "cpu_ms": 8.0, "batches": "5×40"},
            ],
        }
    )  # fmt: skip
    new = run_document(
        {
            "directory": [
                {"name": "search, 1 conn", "api_p50_ms": 4.2, "rps_ratio": 0.45, "p50_ratio": 1.2},
            ],
            "referrals": [
                {"name": "create / bare INSERTs", "kind": "target", "target": "≥0.5 at 16 conn",
                 "ratio": 0.3},
                {"name": "in-process CPU per create (ms)", "cpu_ms": 4.0, "batches": "5×40"},
            ],
        }
    )  # fmt: skip
    lines = results.compare(old, new)
    assert lines[0].endswith(
        "against 2026-11-29T14:05:09+00:00 (commit "
        f"{new['git']['commit'][:10]}, load 0.4): new / old"
    )

    def line(figure):
        (found,) = [text for text in lines if f" {figure} " in text]
        return found.split()

    # A 5 % slower p50 is within the noise: shown, not called out.
    assert line("api_p50_ms")[-2:] == ["4.2", "×1.05"]
    assert line("rps_ratio")[-2:] == ["×0.75", "WORSE"]
    assert line("p50_ratio")[-2:] == ["×0.75", "better"]  # a latency ratio: lower is better
    assert line("ratio")[-2:] == ["×0.60", "WORSE"]
    assert line("cpu_ms")[-2:] == ["×0.50", "better"]
    # Counts, settings and figures of only one run are not compared.
    assert len(lines) == 1 + 5


def test_compare_says_when_runs_share_no_figure():
    old = run_document({"audit": [{"name": "verify_audit", "seconds": 2.0}]})
    new = run_document({"directory": [{"name": "search, 1 conn", "api_rps": 300.0}]})
    assert results.compare(old, new)[1:] == ["  (no figure in common)"]


def test_make_bench_refuses_on_a_busy_machine_and_writes_nothing(tmp_path):
    """A forced threshold below any load average: it says why, exits 3, writes no results."""
    env = {**os.environ, "BENCH_MAX_LOAD": "-1"}
    env.pop("DATABASE_URL", None)
    done = run_python("-m", "tests.bench", "directory", "--results", str(tmp_path / "out"), env=env)
    assert done.returncode == 3, done.stderr
    assert "load average (1 min):" in done.stdout
    assert "refused" in done.stderr and "BENCH_MAX_LOAD" in done.stderr
    assert not (tmp_path / "out").exists()
