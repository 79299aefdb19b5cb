"""The house plan, checked from the source with `ast`: layers inside streams/ point one way,
no import cycles in model/, store/, streams/, a small streams/ root, short functions."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("durable", "model", "store", "streams")
KAFKA = {"faust", "kafka", "aiokafka", "mode"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module named by an import anywhere in the file (function-local ones too)."""
    name, out = _module_name(path), set()
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            out |= {base} | {f"{base}.{a.name}" for a in node.names}
    return out


def _graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    return {m: {t for t in _imports(p) if t in files and t != m} for m, p in files.items()}


GRAPH = _graph()
RAW = {_module_name(p): _imports(p) for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}


def _in(pkg: str) -> dict[str, set[str]]:
    return {m: ts for m, ts in RAW.items() if m == pkg or m.startswith(pkg + ".")}


def test_no_import_cycles():
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(GRAPH[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(GRAPH):
        if node not in state:
            visit(node, [])
    assert cycles == []


def test_the_engine_imports_no_kafka_client_and_no_other_streams_layer():
    for mod, targets in _in("streams.engine").items():
        roots = {t.split(".")[0] for t in targets}
        assert not roots & KAFKA, mod
        assert not {t for t in targets if t.startswith("streams.")
                    and not t.startswith(("streams.engine", "streams.errors"))}, mod


@pytest.mark.parametrize(("layer", "forbidden"), [
    ("streams.kafka", ("streams.engine", "streams.worker", "streams.trainer", "streams.demo", "streams.cli")),
    ("streams.worker", ("streams.trainer", "streams.demo", "streams.cli")),
    ("streams.trainer", ("streams.engine", "streams.worker", "streams.demo", "streams.cli")),
    ("streams.demo", ("streams.cli",)),
    ("streams.data", ("streams.engine", "streams.worker", "streams.demo", "streams.cli")),
    ("streams.chaos", ("streams.demo", "streams.cli")),
])
def test_layers_point_one_way(layer, forbidden):
    for mod, targets in _in(layer).items():
        assert not {t for t in targets if t.startswith(forbidden)}, mod


ENGINE_INSIDES = ("streams.engine.rounds", "streams.engine.popularity", "streams.engine.bulk_refresh")
ENGINE_PRIVATE = ("_rounds", "_popularity", "_finalize", "_apply_engagement", "_keys", "rounds")


def test_nothing_outside_the_engine_reaches_past_it():
    """Engine is the one door: outside streams/engine/ (bench/ and tests/ included) nothing
    imports its model rounds, fallback or bulk refresh, or touches an Engine attribute behind them."""
    found = []
    for path in [*ROOT.glob("bench/*.py"), *(p for pkg in ("streams", "tests") for p in (ROOT / pkg).rglob("*.py"))]:
        if path.is_relative_to(ROOT / "streams/engine") or path == Path(__file__):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(ENGINE_INSIDES):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {node.module}")
            elif isinstance(node, ast.Attribute) and node.attr in ENGINE_PRIVATE:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} .{node.attr}")
    assert found == []


def _engine_store_call(node: ast.AST) -> bool:
    """engine.states.put/get/delete(...) or engine.items.put(...), engine named eng/engine/base."""
    if not (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute)):
        return False
    store, owner = node.value, node.value.value
    named = (isinstance(owner, ast.Name) and owner.id in ("eng", "engine", "base")) or \
        (isinstance(owner, ast.Attribute) and owner.attr == "engine")
    return named and ((store.attr == "states" and node.attr in ("put", "get", "delete"))
                      or (store.attr == "items" and node.attr == "put"))


def test_the_product_and_benches_use_the_engines_doors_to_its_stores():
    """Outside streams/engine/, streams/ and bench/ read and write user states and items through
    Engine methods (user_state, append_history, put_texts, upsert_items ...), not its stores."""
    found = [f"{p.relative_to(ROOT)}:{n.lineno}"
             for p in [*ROOT.glob("bench/*.py"), *(ROOT / "streams").rglob("*.py")]
             if not p.is_relative_to(ROOT / "streams/engine")
             for n in ast.walk(ast.parse(p.read_text())) if _engine_store_call(n)]
    assert found == []


ENGINE_PARTS = ("items", "index", "lane", "id_half", "states", "token_cache")


def _engine_owner(node: ast.AST) -> bool:
    """A name that holds an Engine: eng, engine, base, or any `.engine`."""
    return (isinstance(node, ast.Name) and node.id in ("eng", "engine", "base")) or \
        (isinstance(node, ast.Attribute) and node.attr == "engine")


def _reach_ins(tree: ast.AST) -> list[int]:
    """Lines that use an engine's stores, index, lane or ID half (other than handing one to a
    call by keyword, as a bench building a second Engine on the same stores does) or that
    write its counters or options."""
    handed = {id(k.value) for n in ast.walk(tree) if isinstance(n, ast.Call) for k in n.keywords}
    lines = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr in ENGINE_PARTS
             and _engine_owner(n.value) and id(n) not in handed]
    for n in ast.walk(tree):
        targets = n.targets if isinstance(n, ast.Assign) else [n.target] if isinstance(n, ast.AugAssign) else []
        lines += [t.lineno for t in targets if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Attribute)
                  and t.value.attr in ("stats", "config") and _engine_owner(t.value.value)]
    return lines


def test_the_product_and_benches_go_through_engine_methods():
    """Outside streams/engine/, streams/ and bench/ use the Engine's methods (has_item,
    start_index_copy, index_copy_step, lane_due, run_lane, count_expired, status ...), never its stores, index,
    summary lane or ID half, and never write its counters."""
    found = [f"{p.relative_to(ROOT)}:{line}"
             for p in [*ROOT.glob("bench/*.py"), *(ROOT / "streams").rglob("*.py")]
             if not p.is_relative_to(ROOT / "streams/engine") for line in _reach_ins(ast.parse(p.read_text()))]
    assert found == []


def test_the_reach_in_check_sees_reach_ins():
    code = ("lane = runtime.engine.lane\nok = Engine(m, items=base.items)\nself.engine.stats.expired += 1\n"
            "n = eng.stats.expired\nif x in engine.items: pass\n")
    assert sorted(_reach_ins(ast.parse(code))) == [1, 3, 5]


def test_one_loader_of_the_hybrid_checkpoint():
    """The ID half is put together from its files in model/ids/id_checkpoint.py only."""
    hand = [str(p.relative_to(ROOT)) for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")
            if p.name not in ("id_checkpoint.py", "sasrec.py") and ("load_tower(tensors" in p.read_text()
                                                or "Fusion.from_tensors(" in p.read_text())]
    assert hand == []


def test_nothing_imports_the_cli():
    outside = {m: ts for m, ts in RAW.items() if not m.startswith("streams.cli")}
    assert not {m for m, ts in outside.items() if any(t.startswith("streams.cli") for t in ts)}


def test_only_tests_and_bench_import_the_chaos_driver():
    outside = {m: ts for m, ts in RAW.items() if not m.startswith("streams.chaos")}
    assert not {m for m, ts in outside.items() if any(t.startswith("streams.chaos") for t in ts)}


def test_bench_imports_nothing_from_tests_and_leaves_sys_path_alone():
    """bench/ runs against the installed project: what it needs from tests/ moves into it."""
    found = []
    for path in sorted(ROOT.glob("bench/*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            found += [f"{path.name}:{node.lineno} imports {n}" for n in names
                      if n.split(".")[0] == "tests"]
            if isinstance(node, ast.Attribute) and node.attr == "path" and \
                    isinstance(node.value, ast.Name) and node.value.id == "sys":
                found.append(f"{path.name}:{node.lineno} touches sys.path")
    assert found == []


# model/ bottom to top: the network and inference (model/*.py), the ID half, evaluation, training
MODEL_LAYERS = ("model", "model.ids", "model.evaluation", "model.training")


def _model_layer(mod: str) -> int:
    return max(k for k, layer in enumerate(MODEL_LAYERS) if mod == layer or mod.startswith(layer + "."))


def _upward(graph: dict[str, set[str]]) -> list[str]:
    """model/ imports that point to a higher layer than the importer's."""
    return sorted(f"{m} -> {t}" for m, ts in graph.items() if m.startswith("model.")
                  for t in ts if t.startswith("model.") and _model_layer(t) > _model_layer(m))


def test_model_layers_point_down():
    """model/ (network, inference) <- ids/ (ID tower, gate, online steps) <- evaluation/
    (metrics, baselines, the evaluation run) <- training/: serving never imports a trainer or a
    baseline, evaluation never a training loop."""
    assert _upward(GRAPH) == []
    assert _upward({"model.inference": {"model.ids.sasrec"}, "model.ids.online": {"model.sessions"},
                    "model.evaluation.evaluate": {"model.training.train"}}) == \
        ["model.evaluation.evaluate -> model.training.train", "model.inference -> model.ids.sasrec"]


def test_model_and_store_stay_apart():
    for mod, targets in _in("model").items():
        assert not {t.split(".")[0] for t in targets} & {"store", "streams", *KAFKA}, mod
    for mod, targets in _in("store").items():
        assert not {t.split(".")[0] for t in targets} & {"model", "streams", *KAFKA}, mod


def test_durable_files_import_no_other_package():
    for mod, targets in _in("durable").items():
        assert not {t.split(".")[0] for t in targets} & {"model", "store", "streams", *KAFKA}, mod


def test_one_implementation_of_replacing_a_file():
    """os.replace appears only in durable/: every other writer goes through it."""
    users = [str(p.relative_to(ROOT)) for pkg in PACKAGES if pkg != "durable"
             for p in (ROOT / pkg).rglob("*.py") if "os.replace(" in p.read_text()]
    assert users == []


def test_streams_root_holds_at_most_five_modules():
    flat = [p.name for p in (ROOT / "streams").glob("*.py") if p.name != "__init__.py"]
    assert len(flat) <= 5, flat


def test_no_function_over_50_lines():
    long = []
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    n = node.end_lineno - node.lineno + 1
                    if n > 50:
                        long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({n})")
    assert long == []
