"""The package layering of the README's Layout section: an import only ever runs down the list
(the CLI on top, the base layer at the bottom), so there is no cycle between packages."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "asrkd"
# Top to bottom, as in the README's Layout section.
ORDER = ["cli", "commands", "experiment", "decode", "evaluation", "train", "softtargets", "inference", "align",
         "kernels", "models", "lm", "lang", "features", "data", "base"]
BASE = {"config", "errors", "logs", "fileio", "text", "framestore", "framing", "distributed", "__init__"}


def _layer(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "asrkd":
        return None
    if len(parts) == 1 or parts[1] in BASE:
        return "base"
    return "cli" if parts[1] in ("cli", "__main__") else parts[1]


def test_every_package_has_a_layer() -> None:
    layers = {_layer("asrkd." + ".".join(p.relative_to(ROOT).with_suffix("").parts)) for p in ROOT.rglob("*.py")}
    assert layers <= set(ORDER), sorted(layers - set(ORDER))


def test_imports_only_run_down_the_layers() -> None:
    upward = []
    for path in ROOT.rglob("*.py"):
        src = _layer("asrkd." + ".".join(path.relative_to(ROOT).with_suffix("").parts))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                mods = [node.module]
                if node.module == "asrkd":  # from asrkd import commands: the module named, not a value
                    mods += [f"asrkd.{a.name}" for a in node.names if a.name in ORDER or a.name in BASE]
            elif isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            else:
                continue
            for m in mods:
                dst = _layer(m)
                if dst and dst != src and m != "asrkd" and ORDER.index(dst) < ORDER.index(src):
                    upward.append(f"{path.relative_to(ROOT.parent)} imports {m} ({src} -> {dst})")
    assert not upward, "\n".join(upward)
