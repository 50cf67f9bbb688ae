"""The layout keeps its one circle: no import cycle among the modules of minigrad, bpe
and gpt except the natural Tensor <-> ops pair. Every op module builds Tensors, and
`minigrad.tensor` calls the ops for its operators and methods (`x + y`, `x.sin()`,
`x.gelu()`): those edges, from `minigrad.tensor` to `minigrad.ops.*` and to the fused
ops of `minigrad.nn.functional.*`, are the only ones a cycle may close through.

The import graph is read statically (ast), so a module that fails to import still shows
its edges. Imports inside functions count too: deferring an import to call time hides a
cycle from the interpreter, not from a reader (the lazy `cpu_kernels` import of the old
backend module was such a circle). Imports under ``if TYPE_CHECKING:`` do not count:
they never run. An edge goes to the module named (``from a import b`` to ``a.b`` when that
is a module, else to ``a``), not to the packages above it, which Python merely
initialises first.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("minigrad", "bpe", "gpt")


def module_files() -> dict[str, Path]:
    """Dotted module name -> file, for every module of PACKAGES."""
    files = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return files


def is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imported_names(tree: ast.AST, module: str, is_package: bool):
    """(module, name or None) for every import statement that can run."""
    package = module if is_package else module.rpartition(".")[0]
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            yield from ((alias.name, None) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: up level - 1 packages from this module's package
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            yield from ((base, alias.name) for alias in node.names)
        stack.extend(ast.iter_child_nodes(node))


def import_graph() -> dict[str, set[str]]:
    files = module_files()
    graph = {}
    for module, path in files.items():
        edges = set()
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for base, name in imported_names(tree, module, path.name == "__init__.py"):
            target = f"{base}.{name}" if name and f"{base}.{name}" in files else base
            if target in files and target != module:
                edges.add(target)
        graph[module] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), sorted."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []

    def visit(start):
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def is_op_module(module: str) -> bool:
    return any(module == p or module.startswith(p + ".")
               for p in ("minigrad.ops", "minigrad.nn.functional"))


def without_tensor_to_ops(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The graph less the edges of the Tensor <-> ops pair that close it: Tensor -> ops."""
    return {module: {t for t in edges if not (module == "minigrad.tensor" and is_op_module(t))}
            for module, edges in graph.items()}


def test_no_import_cycle_but_tensor_and_ops():
    remaining = cycles(without_tensor_to_ops(import_graph()))
    assert not remaining, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in remaining)


def test_the_graph_sees_the_known_edges_and_finds_a_cycle():
    """The reader is not blind: it finds imports of every form, the Tensor <-> ops pair,
    and a made-up circle."""
    graph = import_graph()
    assert "minigrad.ops" in graph["minigrad.tensor"]  # a late module-level import
    assert "minigrad.ops.conversion" in graph["minigrad.tensor"]  # inside a method
    assert {"minigrad.autograd", "minigrad.tensor"} <= graph["minigrad.ops.unary"]
    pair = next(c for c in cycles(graph) if "minigrad.tensor" in c)
    assert {"minigrad.ops", "minigrad.ops.unary"} <= set(pair)
    made_up = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(made_up) == [["a", "b", "c"]]
