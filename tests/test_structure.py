"""How the code is put together: no import circles, listeners that never reach back into the
app, and functions on the utterance paths short enough to read whole."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LONGEST_FUNCTION_LINES = 80
# The pipeline, session and decoding paths: what every utterance runs through.
UTTERANCE_PATHS = ("assistant/pipeline.py", "assistant/segmenter.py", "assistant/stream.py",
                   "assistant/recording.py", "assistant/utterance.py", "assistant/decoding.py",
                   "assistant/recognizer.py", "serving/ws/session.py", "serving/ws/connection.py",
                   "serving/ws/listener.py", "serving/services.py", "serving/inference.py")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, package: str, strict: bool = True) -> set[str]:
    """The modules of ``package`` that ``path`` imports. ``strict``: at the top, in functions
    and under ``TYPE_CHECKING`` alike (a circle through any of them is still a circle); else
    only the imports that run when the module is imported (its top-level statements)."""
    module = _module_name(path)
    base = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found: set[str] = set()
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree) if strict else tree.body:
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[: len(base) - node.level + 1]
                target = ".".join([*anchor, node.module] if node.module else anchor)
            else:
                target = node.module or ""
            names = [target] + [f"{target}.{a.name}" for a in node.names]
        else:
            continue
        found |= {n for n in names if n == package or n.startswith(package + ".")}
    return found


def _graph(package: str, strict: bool = True) -> dict[str, set[str]]:
    files = sorted((REPO / package).rglob("*.py"))
    modules = {_module_name(f) for f in files}
    return {_module_name(f): {m for m in _imports(f, package, strict) if m in modules}
            - {_module_name(f)} for f in files}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_cycle_finder_finds_cycles() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set(), "c": {"a"}}) is None


# serving/ has none at all; the core none at import time (the grammar's Context and Automaton
# refer to each other for type hints and a lazily built property, which is left as it is).
@pytest.mark.parametrize(("package", "strict"), [("serving", True), ("assistant", False)])
def test_no_import_circles(package: str, strict: bool) -> None:
    graph = _graph(package, strict)
    assert len(graph) > 5
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_listeners_and_services_never_reach_for_the_app() -> None:
    graph = _graph("serving")
    for module, imports in graph.items():
        if module not in ("serving.server", "serving.cli"):
            assert "serving.server" not in imports, module
    # The services know no transport.
    transports = {m for m in graph if m.startswith("serving.ws")}
    for module in ("serving.services", "serving.catalog", "serving.models",
                   "serving.inference", "serving.metrics", "serving.quality"):
        assert not graph[module] & transports, module


def _long_functions(path: Path) -> list[tuple[str, int]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > LONGEST_FUNCTION_LINES:
                out.append((node.name, length))
    return out


def test_functions_on_the_utterance_paths_are_short() -> None:
    too_long = {f: _long_functions(REPO / f) for f in UTTERANCE_PATHS}
    assert not any(too_long.values()), {f: v for f, v in too_long.items() if v}


def test_the_length_check_sees_long_functions(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(LONGEST_FUNCTION_LINES))
    (tmp_path / "long.py").write_text(f"def f():\n{body}\n")
    assert _long_functions(tmp_path / "long.py") == [("f", LONGEST_FUNCTION_LINES + 1)]
