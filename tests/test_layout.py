"""The package's shape: no import circles between its modules (lazy imports inside functions count too),
and no library module importing a top-level script."""
import ast
import os

from conftest import ROOT

PACKAGE = "esc50_baseline"
SCRIPTS = {"utils", "task_esc50", "task_esc50_tflite", "model_size_calculation"}


def modules():
    """{dotted module name: path} of every module in the package."""
    found = {}
    for here, _dirs, files in os.walk(os.path.join(ROOT, PACKAGE)):
        for name in files:
            if name.endswith(".py"):
                rel = os.path.relpath(os.path.join(here, name), ROOT)[:-3].replace(os.sep, ".")
                found[rel[:-len(".__init__")] if rel.endswith(".__init__") else rel] = os.path.join(here, name)
    return found


def imports_of(name, path, known):
    """The package modules (and top-level scripts) that module `name` imports anywhere in its body."""
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                out.add(full if full in known else base)
    return {m for m in out if m in known or m in SCRIPTS}


def graph():
    known = modules()
    return {name: imports_of(name, path, known) - {name} for name, path in known.items()}


def test_the_import_graph_is_read_correctly():
    edges = graph()
    assert "esc50_baseline.models.blocks" in edges["esc50_baseline.models.architectures"]
    assert "esc50_baseline.models.complexity" in edges["esc50_baseline.tflite.size"]
    assert "esc50_baseline.runtime" in edges["esc50_baseline.tflite.convert"]


def test_no_library_module_imports_a_top_level_script():
    offenders = {name: sorted(deps & SCRIPTS) for name, deps in graph().items() if deps & SCRIPTS}
    assert offenders == {}


def test_no_import_circles():
    edges = {name: deps - SCRIPTS - {PACKAGE} for name, deps in graph().items()}
    circles = []

    def visit(node, path):
        for nxt in sorted(edges.get(node, ())):
            if nxt in path:
                circles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in done:
                visit(nxt, path + [nxt])
        done.add(node)

    done = set()
    for start in sorted(edges):
        if start not in done:
            visit(start, [start])
    assert circles == []


# The layers, lowest first: a module imports only from its own layer and those below it. Infrastructure is what
# every part shares; the toolkits take plain values (arrays, models, settings objects); config reads the YAML
# with the toolkits' own declarations (augmentations, TFLite formats); the pipeline knows the run.
LAYERS = [
    ("infrastructure", ["errors", "interrupts", "progress", "atomic", "results_io", "runtime", "validation"]),
    ("toolkit", ["data", "features", "models", "evaluation", "detection", "training", "tflite"]),
    ("config", ["config"]),
    ("pipeline", ["run", "stages", "reports"]),
]


def rank(module):
    """(layer, place in the layer) of a package module, by its first part below the package."""
    part = module.split(".")[1] if "." in module else module
    for layer, (_name, parts) in enumerate(LAYERS):
        if part in parts:
            return layer, parts.index(part)
    raise AssertionError(f"{module} is in no layer of LAYERS: add it to one")


def test_every_module_has_a_layer_and_imports_none_above_its_own():
    upward = []
    for name, deps in graph().items():
        if name == PACKAGE:
            continue
        for dep in deps - SCRIPTS - {PACKAGE}:
            if rank(dep)[0] > rank(name)[0]:
                upward.append(f"{name} -> {dep}")
    assert upward == []


def test_the_toolkits_import_in_one_direction_and_never_the_run_or_a_stage():
    """data, features, models, evaluation, detection, training, tflite: each imports only those before it (so
    models never imports training), and none of them the run context, a stage or a report."""
    backwards = []
    for name, deps in graph().items():
        if name != PACKAGE and LAYERS[rank(name)[0]][0] == "toolkit":
            for dep in deps - SCRIPTS - {PACKAGE}:
                if rank(dep)[0] == rank(name)[0] and rank(dep)[1] > rank(name)[1] or rank(dep)[0] >= 2:
                    backwards.append(f"{name} -> {dep}")
    assert backwards == []


def test_the_layer_check_finds_an_import_against_the_layers():
    """The checks above read the real graph: a module of models importing training would be caught."""
    assert rank("esc50_baseline.models.builder") < rank("esc50_baseline.training.trainer")
    assert rank("esc50_baseline.stages.learning")[0] > rank("esc50_baseline.training.fold")[0]
    assert "esc50_baseline.run.context" in graph()["esc50_baseline.stages.common"]


def test_utils_keeps_only_the_flags_and_the_dispatch():
    with open(os.path.join(ROOT, "utils.py"), encoding="utf-8") as f:
        assert len(f.read().splitlines()) < 200
