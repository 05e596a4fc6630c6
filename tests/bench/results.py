"""`make bench` results as JSON under var/bench/ (one timestamped file per run and latest.json),
and `make bench BENCH_COMPARE=earlier.json`: every figure of this run as a ratio to the same
figure of the earlier one, so a regression shows."""

import json
import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path

# A change smaller than this is within a run's noise on a shared machine: not called out.
NOTABLE_CHANGE = 0.10


def git_state(root: Path) -> dict:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, check=False
        ).stdout.strip()

    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain"))}


def document(
    *, root: Path, started: datetime, load: dict, settings: dict, areas: dict[str, list[dict]]
) -> dict:
    return {
        "started": started.isoformat(),
        "git": git_state(root),
        "load_average": load,
        "cpu_count": settings.get("cpu_count"),
        "python": platform.python_version(),
        "settings": settings,
        "areas": areas,
    }


def write(doc: dict, directory: Path) -> Path:
    """bench-<UTC start>.json and latest.json (replaced whole, never left half written)."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.fromisoformat(doc["started"]).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = directory / f"bench-{stamp}.json"
    text = json.dumps(doc, indent=2, ensure_ascii=False, default=str) + "\n"
    path.write_text(text)
    partial = directory / "latest.json.partial"
    partial.write_text(text)
    os.replace(partial, directory / "latest.json")
    return path


def figures(doc: dict) -> dict[tuple[str, str, str], tuple[float, dict]]:
    """(area, row name, key) → (number, its row) for every numeric figure of a run."""
    found = {}
    for area, rows in doc.get("areas", {}).items():
        for row in rows:
            for key, value in row.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    found[(area, row["name"], key)] = (value, row)
    return found


def better(row: dict, key: str) -> int:
    """+1 when a larger figure is better, -1 when a smaller one is, 0 for counts and the like."""
    if row.get("kind") == "target" and key.startswith("ratio"):
        return 1 if row.get("target", "").startswith("≥") else -1
    if key.startswith("p50_ratio"):
        return -1
    if key.endswith(("rps", "rps_ratio", "rps_ratio_min", "rps_ratio_max", "per_s")):
        return 1
    if key.endswith(("_ms", "_s", "seconds", "_pct")) or key.startswith("cpu_"):
        return -1
    return 0


def compare(old: dict, new: dict) -> list[str]:
    """One line per speed figure in both runs (counts and settings left out): old → new, the
    ratio, and `worse`/`better` when it moved more than NOTABLE_CHANGE the way that matters."""
    before, after = figures(old), figures(new)

    def run(doc: dict) -> str:
        commit = doc.get("git", {}).get("commit", "?")[:10]
        return f"{doc.get('started', '?')} (commit {commit}, load {doc.get('load_average', {}).get('start', '?')})"

    lines = [f"this run {run(new)} against {run(old)}: new / old"]
    compared = 0
    for key, (new_value, row) in after.items():
        area, name, figure = key
        direction = better(row, figure)
        if key not in before or not direction:
            continue
        compared += 1
        old_value = before[key][0]
        if old_value == 0:
            lines.append(
                f"  {area:<10} {name:<48} {figure:<22} {old_value:>10g} → {new_value:<10g}"
            )
            continue
        factor = new_value / old_value
        verdict = ""
        if abs(factor - 1) > NOTABLE_CHANGE:
            verdict = "better" if (factor > 1) == (direction > 0) else "WORSE"
        lines.append(
            f"  {area:<10} {name:<48} {figure:<22} {old_value:>10g} → {new_value:<10g} "
            f"×{factor:.2f} {verdict}".rstrip()
        )
    if not compared:
        lines.append("  (no figure in common)")
    return lines
