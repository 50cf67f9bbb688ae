"""Draw the computation graph behind a tensor: the ops backward will visit, the tensors
that flow between them (shape, dtype), which leaves require grad, and optionally the
gradient norms after backward.

    graph = minigrad.viz.draw(loss, params=model)   # a Graph; graph.source is DOT
    graph.save("loss.dot")                         # always works
    graph.render("loss.svg")                       # .svg / .png / .pdf need Graphviz

A GPT's graph has hundreds of ops. Record which module made each op, then collapse:

    with minigrad.viz.record_modules(model):
        logits, loss = model(ids, targets)
    minigrad.viz.draw(loss, params=model, collapse=2).render("gpt.svg")

In the full view the ops of each module sit in a labelled box (a Graphviz cluster);
with ``collapse=depth`` all the ops of a module ``depth`` names deep (``h.0`` is depth 2)
become one node, and so do the parameters only that module uses.

Rendering calls Graphviz's ``dot`` program (no Python package needed): install it with
``apt-get install graphviz``, ``brew install graphviz`` or ``conda install graphviz``,
and check with ``which dot``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import subprocess
from collections.abc import Mapping

from minigrad import backends
from minigrad.autograd import Function, add_observer, remove_observer
from minigrad.io import atomic
from minigrad.tensor import Tensor

RENDER_FORMATS = ("svg", "png", "pdf")

# Graphviz attributes per node role.
_STYLES = {
    "op": 'shape=box, style="rounded,filled", fillcolor="#e8e8e8"',
    "param": 'shape=ellipse, style=filled, fillcolor="#cfe2ff"',
    "constant": 'shape=ellipse, style="filled,dashed", fillcolor="#f7f7f7"',
    "output": 'shape=ellipse, style=filled, fillcolor="#c8f7c5"',
    "module": 'shape=box3d, style=filled, fillcolor="#fff2cc"',
}


@dataclasses.dataclass
class Node:
    """One node: an op, a tensor (leaf or the output), or a collapsed module."""

    id: str
    role: str  # "op", "param" (leaf requiring grad), "constant" (leaf), "output", "module"
    name: str  # op name, tensor name ("" when unnamed) or module path ("h.0")
    label: str  # the text drawn
    module: tuple = ()  # names of the module it belongs to, ("h", "0", "attn"); () if none


@dataclasses.dataclass(frozen=True)
class Edge:
    """Data flowing from src to dst; the label describes the tensor between two ops."""

    src: str
    dst: str
    label: str = ""


class Graph:
    """A drawn graph: `nodes` (id -> Node), `edges`, and its Graphviz `source`."""

    def __init__(self, nodes: dict[str, Node], edges: list[Edge], module_classes: dict):
        self.nodes, self.edges = nodes, edges
        self.module_classes = module_classes  # module names tuple -> class name

    @property
    def source(self) -> str:
        """The graph in Graphviz's DOT language."""
        lines = ["digraph minigrad {",
                 '  graph [rankdir=TB, fontname="Helvetica", fontsize=11];',
                 '  node [fontname="Helvetica", fontsize=10];',
                 '  edge [fontname="Helvetica", fontsize=9, color="#555555"];']
        lines += self._clusters(self._module_tree(), (), "  ")
        for e in self.edges:
            label = f' [label="{_escape(e.label)}"]' if e.label else ""
            lines.append(f"  {e.src} -> {e.dst}{label};")
        lines.append("}")
        return "\n".join(lines) + "\n"

    def _module_tree(self) -> dict:
        """module names tuple -> the nodes directly in it (() holds the top level)."""
        tree: dict[tuple, list] = {(): []}
        for node in self.nodes.values():
            for depth in range(1, len(node.module) + 1):
                tree.setdefault(node.module[:depth], [])
            tree[node.module].append(node)
        return tree

    def _clusters(self, tree: dict, path: tuple, indent: str) -> list[str]:
        lines = [f"{indent}{n.id} [label=\"{_escape(n.label)}\", {_STYLES[n.role]}];"
                 for n in tree[path]]
        children = [p for p in tree if len(p) == len(path) + 1 and p[:len(path)] == path]
        for child in children:
            name = ".".join(child)
            cls = self.module_classes.get(child)
            title = f"{name} ({cls})" if cls else name
            lines.append(f'{indent}subgraph "cluster_{_escape(name)}" {{')
            lines.append(f'{indent}  label="{_escape(title)}"; style=rounded; color="#999999";')
            lines += self._clusters(tree, child, indent + "  ")
            lines.append(f"{indent}}}")
        return lines

    def save(self, path) -> str:
        """Write the DOT source to `path` (e.g. "graph.dot")."""
        atomic.write_bytes(path, self.source.encode())
        return os.fspath(path)

    def render(self, path, format: str | None = None) -> str:
        """Render with Graphviz to `path`; the format comes from the suffix unless given."""
        format = format or os.path.splitext(os.fspath(path))[1].lstrip(".").lower()
        if format not in RENDER_FORMATS:
            raise ValueError(f"viz.render: unknown format {format!r} for {path}; expected one "
                             f"of {', '.join(RENDER_FORMATS)} (or save() for .dot)")
        atomic.write_bytes(path, _run_dot(self.source, format))
        return os.fspath(path)

    def _repr_svg_(self):
        """Inline display in Jupyter, when Graphviz is installed."""
        return _run_dot(self.source, "svg").decode() if shutil.which("dot") else None


def draw(root: Tensor, path=None, *, params=None, show_grads: bool = False,
         collapse: int | None = None) -> Graph:
    """The computation graph behind `root`, as a `Graph` (written to `path` if given:
    .dot as source, .svg/.png/.pdf rendered with Graphviz).

    params: a Module, a name -> tensor mapping or (name, tensor) pairs, naming the leaves.
    show_grads: label tensors that have a `.grad` with its L2 norm (after backward; keep
        an intermediate's gradient with `retain_grad()`). One host transfer per norm.
    collapse: depth at which ops tagged by `record_modules` merge into one node per module.
    """
    if collapse is not None and (not isinstance(collapse, int) or collapse < 1):
        raise ValueError(f"viz.draw: collapse must be a depth >= 1 (h.0 is 2) or None, "
                         f"got {collapse!r}")
    names = {} if params is None else {id(t): name for name, t in named_tensors(params)}
    graph = _GraphBuilder(names, show_grads).build(root)
    if collapse is not None:
        graph = _collapse(graph, collapse)
    if path is not None:
        if os.path.splitext(os.fspath(path))[1].lower() in (".dot", ".gv"):
            graph.save(path)
        else:
            graph.render(path)
    return graph


def named_tensors(obj) -> list[tuple[str, Tensor]]:
    """(name, tensor) pairs from a Module, a mapping, or an iterable of pairs."""
    if hasattr(obj, "named_parameters"):
        return list(obj.named_parameters())
    if isinstance(obj, Mapping):
        return list(obj.items())
    pairs = list(obj)
    if not all(isinstance(p, tuple) and len(p) == 2 and isinstance(p[1], Tensor) for p in pairs):
        raise TypeError("expected a Module, a name -> Tensor mapping or (name, Tensor) pairs")
    return pairs


class _GraphBuilder:
    """Walks the graph from the root's op back to the leaves (an explicit stack)."""

    def __init__(self, names: dict, show_grads: bool):
        self.names, self.show_grads = names, show_grads
        self.nodes: dict[str, Node] = {}
        self.edges: list[Edge] = []
        self.module_classes: dict[tuple, str] = {}
        self.ids: dict[int, str] = {}  # id(Function or leaf Tensor) -> node id

    def build(self, root: Tensor) -> Graph:
        if root._ctx is None:
            self._leaf(root)
        else:
            out = self._add(Node("", "output", self._name(root) or "output",
                                 self._tensor_label(root, self._name(root) or "output")))
            self.edges.append(Edge(self._op(root._ctx), out))
        return Graph(self.nodes, self.edges, self.module_classes)

    def _add(self, node: Node) -> str:
        node.id = f"n{len(self.nodes)}"
        self.nodes[node.id] = node
        return node.id

    def _op(self, root_fn: Function) -> str:
        """Add root_fn and every op and leaf it depends on; returns root_fn's node id."""
        stack = [root_fn]
        while stack:
            fn = stack.pop()
            node_id = self.ids.get(id(fn))
            if node_id is None:
                node_id = self.ids[id(fn)] = self._add_op(fn)
            for t in fn.inputs:
                if t._ctx is None:
                    self.edges.append(Edge(self._leaf(t), node_id))
                    continue
                if id(t._ctx) not in self.ids:
                    self.ids[id(t._ctx)] = self._add_op(t._ctx)
                    stack.append(t._ctx)
                self.edges.append(Edge(self.ids[id(t._ctx)], node_id, self._edge_label(t)))
        return self.ids[id(root_fn)]

    def _add_op(self, fn: Function) -> str:
        tags = getattr(fn, "module_path", ())
        module = tuple(name for name, _ in tags)
        for depth, (_, cls) in enumerate(tags, start=1):
            self.module_classes[module[:depth]] = cls
        return self._add(Node("", "op", fn.name, fn.name, module))

    def _leaf(self, t: Tensor) -> str:
        node_id = self.ids.get(id(t))
        if node_id is None:
            name = self._name(t)
            module = tuple(name.split(".")[:-1]) if id(t) in self.names else ()
            node_id = self.ids[id(t)] = self._add(Node(
                "", "param" if t.requires_grad else "constant", name,
                self._tensor_label(t, name), module))
        return node_id

    def _name(self, t: Tensor) -> str:
        return self.names.get(id(t)) or t.name or ""

    def _tensor_label(self, t: Tensor, name: str) -> str:
        lines = [name] if name else []
        lines.append(_shape_dtype(t))
        if t.is_leaf:
            lines.append("requires grad" if t.requires_grad else "no grad")
        return "\n".join(lines + self._grad_line(t))

    def _edge_label(self, t: Tensor) -> str:
        return "\n".join([_shape_dtype(t), *self._grad_line(t)])

    def _grad_line(self, t: Tensor) -> list[str]:
        if not self.show_grads or t.grad is None:
            return []
        return [f"|grad| {_norm(t.grad):.3g}"]


def _shape_dtype(t: Tensor) -> str:
    return f"{t.shape} {backends.dtype_name(t.dtype)}"


def _norm(t: Tensor) -> float:
    """L2 norm of a tensor: reduced on the device, one explicit transfer of the result."""
    return math.sqrt(float(t.device.to_host(t.device.xp.sum(t.data * t.data))))


def _collapse(graph: Graph, depth: int) -> Graph:
    """Merge the ops of each module `depth` names deep (and of its submodules) into one
    node; parameters that only one merged module uses go into it. Edges inside a module
    disappear. Ops of shallower modules stay, in their module's cluster."""
    nodes: dict[str, Node] = {}
    target: dict[str, str] = {}  # old node id -> new node id
    groups: dict[tuple, str] = {}
    counts: dict[str, list] = {}  # module node id -> [ops, params]
    for node in graph.nodes.values():
        key = node.module[:depth] if node.role == "op" and len(node.module) >= depth else ()
        if not key:  # kept, in the cluster of its module (shallower modules stay clusters)
            nodes[node.id] = dataclasses.replace(node, module=node.module[:depth - 1])
            target[node.id] = node.id
            continue
        if key not in groups:
            groups[key] = f"m{len(groups)}"
            counts[groups[key]] = [0, 0]
        target[node.id] = groups[key]
        counts[groups[key]][0] += 1
    consumers: dict[str, set] = {}
    for e in graph.edges:
        consumers.setdefault(e.src, set()).add(target[e.dst])
    for node_id, node in list(nodes.items()):
        users = consumers.get(node_id, set())
        if node.role == "param" and len(users) == 1 and next(iter(users)) in counts:
            del nodes[node_id]
            target[node_id] = next(iter(users))
            counts[target[node_id]][1] += 1
    for key, module_id in groups.items():
        name = ".".join(key)
        ops, params = counts[module_id]
        cls = graph.module_classes.get(key, "")
        contents = _count(ops, "op") + (", " + _count(params, "param") if params else "")
        label = "\n".join(filter(None, (name, cls, contents)))
        nodes[module_id] = Node(module_id, "module", name, label, key[:-1])
    edges, seen = [], set()
    for e in graph.edges:
        edge = Edge(target[e.src], target[e.dst], e.label)
        if edge.src != edge.dst and edge not in seen:
            seen.add(edge)
            edges.append(edge)
    return Graph(nodes, edges, graph.module_classes)


class record_modules:  # lower case, used like no_grad: `with record_modules(model):`
    """Tag every op run inside the block with the module whose forward created it
    (as ``fn.module_path``: ((name, class name), ...) from the model down), using
    forward pre/post hooks on every submodule and a `Function` observer."""

    def __init__(self, model):
        modules = dict(model.named_modules())
        self.model = model
        self.paths = {}  # id(module) -> ((name, class name), ...)
        for name, module in modules.items():
            parts = name.split(".") if name else []
            self.paths[id(module)] = tuple(
                (part, type(modules[".".join(parts[:i + 1])]).__name__)
                for i, part in enumerate(parts))
        self._stack: list[tuple] = []  # (id(module), path) of the forwards now running
        self._handles: list = []
        self._hook = self._tag  # one bound method, so remove_observer finds it

    def __enter__(self) -> record_modules:
        self._stack.clear()
        for module in self.model.modules():
            self._handles.append(module.register_forward_pre_hook(self._enter_module))
            self._handles.append(module.register_forward_hook(self._exit_module))
        add_observer(self._hook)
        return self

    def __exit__(self, *exc):
        remove_observer(self._hook)
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        return False

    def _enter_module(self, module, inputs) -> None:
        self._stack.append((id(module), self.paths[id(module)]))

    def _exit_module(self, module, inputs, output) -> None:
        # Pop down to this module (forwards that raised never popped themselves).
        while self._stack and self._stack.pop()[0] != id(module):
            pass

    def _tag(self, fn: Function, phase: str, payload) -> None:
        if phase == "before_forward" and self._stack:
            fn.module_path = self._stack[-1][1]


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _run_dot(source: str, format: str) -> bytes:
    dot = shutil.which("dot")
    if dot is None:
        raise RuntimeError(
            f"viz: rendering {format} needs Graphviz's `dot` program, which is not on PATH. "
            "Install it (apt-get install graphviz / brew install graphviz / conda install "
            "graphviz) or write the DOT source with graph.save('graph.dot')")
    done = subprocess.run([dot, f"-T{format}"], input=source.encode(), capture_output=True,
                          check=False)
    if done.returncode != 0:
        raise RuntimeError(f"viz: dot -T{format} failed: {done.stderr.decode().strip()}")
    return done.stdout

