"""Dependencies honestly declared: every package the code imports is declared in pyproject.toml,
and every declared package is imported.

- asrkd/ and data_prep/ (run by the recipes with the installed environment) may import the
  standard library, their own modules and ``[project] dependencies``;
- tests/ and tools/ may also import the ``dev`` extra.

Imports are read with ``ast`` (lazy imports inside functions included), and a distribution's
import names come from its installed metadata (PyYAML -> yaml), not from a hand-written table.
"""

from __future__ import annotations

import ast
import re
import sys
from importlib import metadata
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

ROOT = Path(__file__).resolve().parents[1]
RUNTIME_DIRS = ("asrkd", "data_prep")
DEV_DIRS = ("tests", "tools")


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _dist_name(requirement: str) -> str:
    m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    assert m, requirement
    return m.group(1)


def _import_names(dist: str) -> set[str]:
    """The top-level import names a distribution provides (from its installed files)."""
    try:
        d = metadata.distribution(dist)
    except metadata.PackageNotFoundError:
        pytest.fail(f"declared dependency {dist} is not installed: run tools/setup.sh")
    top = d.read_text("top_level.txt")
    names = set(top.split()) if top else set()
    for f in d.files or []:
        parts = f.parts
        if not parts or parts[0].endswith((".dist-info", ".egg-info", ".data")) or parts[0] in ("..", "__pycache__"):
            continue
        first = parts[0]
        if len(parts) > 1:
            names.add(first)
        elif first.endswith(".py"):
            names.add(first[:-3])
        elif first.endswith((".so", ".pyd")):
            names.add(first.split(".")[0])
    return {n for n in names if n.isidentifier()}


def _imports(path: Path) -> set[str]:
    """Top-level names of the absolute imports in one file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out


def _local_names(path: Path) -> set[str]:
    """Modules importable by plain name from ``path``: the repository's packages and the
    file's siblings (tests/conftest helpers, tools/bench_common, data_prep's own modules)."""
    return ({p.name for p in ROOT.iterdir() if p.is_dir()}
            | {p.stem for p in path.parent.glob("*.py")} | {p.name for p in path.parent.iterdir() if p.is_dir()})


def _imports_by_file(dirs: tuple[str, ...]) -> dict[Path, set[str]]:
    out = {}
    for d in dirs:
        for path in sorted((ROOT / d).rglob("*.py")):
            names = _imports(path) - set(sys.stdlib_module_names) - {"__future__"} - _local_names(path)
            out[path] = names
    return out


def _provided(requirements: list[str]) -> dict[str, str]:
    """{import name: distribution} of the given requirements."""
    return {name: _dist_name(r) for r in requirements for name in _import_names(_dist_name(r))}


def test_runtime_code_imports_only_declared_dependencies() -> None:
    provided = _provided(_pyproject()["project"]["dependencies"])
    undeclared = {str(p.relative_to(ROOT)): sorted(n - set(provided))
                  for p, n in _imports_by_file(RUNTIME_DIRS).items() if n - set(provided)}
    assert not undeclared, f"imports of packages not in [project] dependencies: {undeclared}"


def test_tests_and_tools_import_only_declared_dependencies() -> None:
    proj = _pyproject()["project"]
    provided = _provided(proj["dependencies"] + proj["optional-dependencies"]["dev"])
    undeclared = {str(p.relative_to(ROOT)): sorted(n - set(provided))
                  for p, n in _imports_by_file(DEV_DIRS).items() if n - set(provided)}
    assert not undeclared, f"imports of packages declared nowhere in pyproject.toml: {undeclared}"


def test_every_declared_dependency_is_imported() -> None:
    """No package is installed for nothing: each runtime dependency is imported by asrkd/ or
    data_prep/, each dev one by tests/ or tools/ (pytest runs them)."""
    proj = _pyproject()["project"]
    runtime_used = set().union(*_imports_by_file(RUNTIME_DIRS).values())
    dev_used = set().union(*_imports_by_file(DEV_DIRS).values()) | {"pytest"}
    unused = [_dist_name(r) for r in proj["dependencies"]
              if not _import_names(_dist_name(r)) & runtime_used]
    unused += [_dist_name(r) for r in proj["optional-dependencies"]["dev"]
               if not _import_names(_dist_name(r)) & dev_used]
    assert not unused, f"declared but never imported: {unused}"


def test_import_names_come_from_distribution_metadata() -> None:
    """The mapping is read, not guessed: a distribution whose import name differs is found."""
    assert "yaml" in _import_names("PyYAML")
    assert {"soundfile", "kaldiio", "sentencepiece"} <= set(_provided(["soundfile", "kaldiio", "sentencepiece"]))
