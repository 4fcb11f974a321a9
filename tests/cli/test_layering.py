"""The arrows point one way: the device runtime (every module of edgefer/ outside edgefer/cli/) imports none
of the stages; only the CLI reaches up to them. Checked on the source, function-level imports included."""

from __future__ import annotations

import ast
from pathlib import Path

import edgefer

ROOT = Path(edgefer.__file__).parent
STAGES = ("edgefer.train", "edgefer.convert", "edgefer.bench")


def package_of(path: Path) -> str:
    return ".".join(("edgefer", *path.relative_to(ROOT).parent.parts))


def imported_modules(source: str, package: str) -> set[str]:
    """Every module the source imports anywhere (top level, in functions, under if), relative ones resolved
    against ``package``; ``from a import b`` counts as both a and a.b (b may be a module)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def runtime_modules() -> list[Path]:
    return [p for p in sorted(ROOT.rglob("*.py")) if "cli" not in p.relative_to(ROOT).parts]


def reaches_up(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == s or m.startswith(s + ".") for s in STAGES))


def test_no_module_outside_the_cli_imports_a_stage():
    modules = runtime_modules()
    assert ROOT / "runtime" / "recognizer.py" in modules and len(modules) >= 15
    offenders = {str(p.relative_to(ROOT)): reaches_up(imported_modules(p.read_text(encoding="utf-8"), package_of(p)))
                 for p in modules}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_check_sees_function_level_and_relative_imports():
    source = ("import numpy\nfrom . import base\n\ndef later():\n    from ..train.fit import loop\n"
              "    import edgefer.bench.run\n    if True:\n        from edgefer import convert\n")
    assert reaches_up(imported_modules(source, "edgefer.runtime")) == [
        "edgefer.bench.run", "edgefer.convert", "edgefer.train.fit", "edgefer.train.fit.loop"]
    assert "edgefer.runtime.base" in imported_modules(source, "edgefer.runtime")


def test_the_cli_does_reach_up():
    bench = ROOT / "cli" / "bench.py"
    assert "edgefer.bench.run" in reaches_up(imported_modules(bench.read_text(encoding="utf-8"), package_of(bench)))
