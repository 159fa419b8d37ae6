"""The dependency rule of the top-level folders (README, "Layout"), checked on every
import of every module, those inside functions included:

- tasks/ (the contract) and chain/ (Livepeer's pm) import nothing of ours but themselves;
- app/ (the gateway and its back office) and workers/ (the operator's processes) import
  tasks/ and chain/, and never each other;
- nothing imports devstack/, bench/ or tests/ but themselves (devstack/ may be imported
  by bench/ and tests/, bench/ by nothing else)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = {"app", "tasks", "workers", "chain", "devstack", "bench", "tests", "migrations",
        "examples"}
# folder -> the folders of ours it may import besides itself
ALLOWED = {
    "tasks": set(),
    "chain": set(),
    "app": {"tasks", "chain"},
    "workers": {"tasks", "chain"},
    "migrations": {"app", "tasks", "chain"},
    "devstack": {"app", "tasks", "chain", "workers"},
    "bench": {"app", "tasks", "chain", "workers", "devstack"},
    "examples": {"tasks", "chain", "workers"},
    "tests": OURS,
}
# Modules that tests/ puts on the path (pytest.ini: pythonpath = . tests).
TEST_HELPERS = {path.stem for path in (ROOT / "tests").rglob("*.py")}


def imported_packages(path: Path, folder: str) -> set[str]:
    """The top-level packages a module imports, wherever the import statement stands."""
    tree = ast.parse(path.read_text(), str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: inside its own package
                found.add(folder)
            elif node.module:
                found.add(node.module.split(".")[0])
    return found


def broken_imports(root: Path) -> list[str]:
    broken = []
    for folder, allowed in ALLOWED.items():
        for path in sorted((root / folder).rglob("*.py")):
            packages = imported_packages(path, folder)
            if folder == "tests":
                packages -= TEST_HELPERS
            for package in sorted((packages & OURS) - {folder} - allowed):
                broken.append(f"{path.relative_to(root)} imports {package}")
    return broken


def test_every_import_follows_the_rule():
    assert broken_imports(ROOT) == []


@pytest.mark.parametrize("folder, source, broken", [
    ("tasks", "from app.store import jobs\n", "app"),
    ("chain", "def f():\n    import tasks.names\n", "tasks"),
    ("workers", "import json, app.settings\n", "app"),
    ("app", "from workers import runtime\n", "workers"),
    ("app", "from devstack.tiny import build_missing\n", "devstack"),
    ("devstack", "from bench import stack\n", "bench"),
    ("tasks", "from . import names\n", None),
    ("app", "from tasks import names\nfrom chain import ticket\n", None),
])
def test_the_walk_finds_every_kind_of_import(tmp_path, folder, source, broken):
    """A from-import, one inside a function, one of several names, a relative one: each
    is seen, and judged by the folder it stands in."""
    (tmp_path / folder).mkdir()
    (tmp_path / folder / "probe.py").write_text(source)
    expected = [f"{folder}/probe.py imports {broken}"] if broken else []
    assert broken_imports(tmp_path) == expected
