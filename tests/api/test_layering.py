"""`api/` is the plumbing every app uses, so it imports no app: apps register with it (event
subscribers, retention jobs, error shapes, payload formats) instead."""

import ast
from pathlib import Path

API = Path(__file__).resolve().parents[2] / "api"
APPS = ("partners", "referrals")


def imported_modules(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append(node.module)
    return found


def test_the_plumbing_imports_no_app():
    files = [p for p in API.rglob("*.py") if "migrations" not in p.parts]
    assert len(files) > 40, "the walk found the api package"
    reaching_up = {
        f"{path.relative_to(API.parent)}: {module}"
        for path in files
        for module in imported_modules(path)
        if module.split(".")[0] in APPS
    }
    assert reaching_up == set()
