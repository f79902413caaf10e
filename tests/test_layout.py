"""The layout of scripts/steps (README, Development): a package or module per step, no import cycle, and a step
reaches another only through the names its package calls public."""

import ast
from pathlib import Path

from conftest import ROOT

STEPS = ROOT / "scripts" / "steps"
# what a step may import from another step (the packages' docstrings say so); steps.frames is shared by design
PUBLIC = {"steps.frames", "steps.report.pages", "steps.diarization.models"}


def module_name(path):
    parts = path.relative_to(ROOT / "scripts").with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def local_imports(path):
    """``steps.*`` and ``vidflow.*`` modules imported anywhere in ``path`` (lazy imports too)."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package up
                parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            names = [f"{base}.{a.name}" for a in node.names]
            found |= {n for n in names if (ROOT / "scripts" / Path(*n.split("."))).with_suffix(".py").exists()
                      or (ROOT / "scripts" / Path(*n.split(".")) / "__init__.py").exists()} or {base}
    return {name for name in found if name.split(".")[0] in ("steps", "vidflow")}


MODULES = {module_name(p): local_imports(p) for p in sorted((ROOT / "scripts").rglob("*.py"))
           if "__pycache__" not in p.parts and p.parent != ROOT / "scripts"}


def step_of(name):
    return name.split(".")[1] if name.startswith("steps.") and name.count(".") >= 1 else None


def test_there_is_no_import_cycle():
    state = {}

    def visit(name, trail):
        if state.get(name) == "done":
            return
        assert state.get(name) != "open", "import cycle: " + " -> ".join([*trail, name])
        state[name] = "open"
        for target in sorted(MODULES.get(name, ())):
            visit(target, [*trail, name])
        state[name] = "done"

    for name in MODULES:
        visit(name, [])


def test_a_step_reaches_another_only_through_its_public_names():
    for name, imports in MODULES.items():
        for target in imports:
            if step_of(target) and step_of(name) and step_of(target) != step_of(name):
                assert target in PUBLIC, f"{name} imports {target}, an internal module of another step"
    assert all(not step_of(t) for t in MODULES["vidflow.job"])  # the shared helpers know no step


def test_every_step_package_has_an_entry_with_a_run_function():
    for package in sorted(p.parent for p in STEPS.glob("*/__init__.py")):
        entry = package / ("video.py" if package.name == "report" else "pipeline.py")  # report: a page per job
        tree = ast.parse(entry.read_text())
        assert "run" in {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}, entry
        assert (package / "__init__.py").read_text().startswith('"""'), f"{package}: say what it holds"
