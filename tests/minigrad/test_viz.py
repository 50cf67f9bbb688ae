"""Graph drawing: the graph of a known expression has exactly the expected nodes and
edges; module recording tags ops and collapses them; DOT renders when Graphviz exists."""

import math
import shutil
from collections import Counter

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn, viz
from minigrad.autograd import Function

needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="Graphviz `dot` not installed (apt-get install graphviz)")


def named_edges(graph) -> Counter:
    """(source name, destination name, label) of every edge, as a multiset."""
    return Counter((graph.nodes[e.src].name, graph.nodes[e.dst].name, e.label)
                   for e in graph.edges)


def roles(graph) -> Counter:
    return Counter((n.name, n.role) for n in graph.nodes.values())


def leaf(values, name, requires_grad=True, device="cpu"):
    t = mg.tensor(values, requires_grad=requires_grad, device=device)
    t.name = name
    return t


# -- the graph of an expression --------------------------------------------------------
def test_known_expression_has_exactly_the_expected_nodes_and_edges(device):
    x = leaf([1.0, 2.0], "x", device=device)
    y = leaf([3.0, 4.0], "y", device=device)
    z = (x * y + x).sum()
    graph = viz.draw(z)
    assert roles(graph) == Counter({("x", "param"): 1, ("y", "param"): 1, ("mul", "op"): 1,
                                    ("add", "op"): 1, ("sum", "op"): 1, ("output", "output"): 1})
    vector = "(2,) float32"
    assert named_edges(graph) == Counter({
        ("x", "mul", ""): 1, ("y", "mul", ""): 1, ("mul", "add", vector): 1,
        ("x", "add", ""): 1, ("add", "sum", vector): 1, ("sum", "output", ""): 1})


def test_tensor_used_twice_by_one_op_gives_two_edges():
    x = leaf([1.0], "x")
    graph = viz.draw(x * x)
    assert named_edges(graph) == Counter({("x", "mul", ""): 2, ("mul", "output", ""): 1})


def test_shared_intermediate_is_one_node_with_two_consumers():
    x = leaf([1.0, 2.0], "x")
    h = x.exp()
    graph = viz.draw(h.sum() + h.mean())
    assert Counter(n.name for n in graph.nodes.values())["exp"] == 1
    edges = named_edges(graph)
    assert edges[("exp", "sum", "(2,) float32")] == 1
    assert edges[("exp", "mean", "(2,) float32")] == 1


def test_leaves_show_shape_dtype_and_whether_they_require_grad():
    w = leaf([[1.0, 2.0]], "w")
    data = leaf([[3.0], [4.0]], "data", requires_grad=False)
    graph = viz.draw((w @ data).sum() + (w @ data.astype("float64").astype("float32")).sum())
    by_name = {n.name: n for n in graph.nodes.values()}
    assert by_name["w"].role == "param"
    assert by_name["w"].label == "w\n(1, 2) float32\nrequires grad"
    assert by_name["data"].role == "constant"
    assert by_name["data"].label == "data\n(2, 1) float32\nno grad"
    # The casts of data need no grad, so they are not in the graph: their result is an
    # unnamed leaf.
    assert "astype" not in by_name
    assert by_name[""].label == "(2, 1) float32\nno grad"
    assert by_name["output"].label == "output\n() float32"


def test_multi_output_op_edges_carry_each_output_shape():
    x = leaf([[1.0, 2.0, 3.0]], "x")
    a, b = x.split([1, 2], axis=1)
    graph = viz.draw(a.sum() + b.sum())
    edges = named_edges(graph)
    assert edges[("split", "sum", "(1, 1) float32")] == 1
    assert edges[("split", "sum", "(1, 2) float32")] == 1


def test_gradient_norms_after_backward(device):
    x = leaf([3.0, 4.0], "x", device=device)
    h = x * 2.0
    h.retain_grad()
    loss = (h * h).sum()
    loss.backward()
    graph = viz.draw(loss, show_grads=True)
    x_node = next(n for n in graph.nodes.values() if n.name == "x")
    # dL/dx = 8x = (24, 32): norm 40; dL/dh = 2h = (12, 16): norm 20
    assert x_node.label.endswith("|grad| 40")
    assert named_edges(graph)[("mul_scalar", "mul", "(2,) float32\n|grad| 20")] == 2
    assert "|grad|" not in viz.draw(loss).source


def test_names_from_a_module_a_mapping_or_pairs():
    w = mg.tensor([1.0, 2.0], requires_grad=True)

    class Holder(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(mg.tensor([1.0, 2.0]))

    holder = Holder()
    for params, tensor, name in ((holder, holder.w, "w"), ({"weight": w}, w, "weight"),
                                 ([("pair", w)], w, "pair")):
        names = {n.name for n in viz.draw(tensor.sum(), params=params).nodes.values()}
        assert name in names
    with pytest.raises(TypeError, match="Module"):
        viz.draw(w.sum(), params=[1, 2])


def test_a_leaf_alone_is_one_node():
    graph = viz.draw(leaf([1.0], "x"))
    assert [(n.name, n.role) for n in graph.nodes.values()] == [("x", "param")]
    assert graph.edges == []


def test_deep_chain_draws_without_recursion():
    x = leaf([1.0], "x")
    y = x
    for _ in range(3000):
        y = y * 1.0
    graph = viz.draw(y)
    assert len(graph.nodes) == 3002 and len(graph.edges) == 3001


def test_drawing_after_backward_keeps_the_graph():
    x = leaf([1.0, 2.0], "x")
    loss = x.exp().sum()
    before = named_edges(viz.draw(loss))
    loss.backward()
    assert named_edges(viz.draw(loss)) == before


# -- DOT source and rendering ------------------------------------------------------------
def test_dot_source_declares_every_node_and_edge(tmp_path):
    x = leaf([1.0, 2.0], 'quote"and\\slash')
    graph = viz.draw((x * 2.0).sum(), tmp_path / "g.dot")
    source = (tmp_path / "g.dot").read_text()
    assert source == graph.source
    assert source.startswith("digraph minigrad {") and source.rstrip().endswith("}")
    for node_id in graph.nodes:
        assert f"  {node_id} [label=" in source
    for e in graph.edges:
        assert f"{e.src} -> {e.dst}" in source
    assert 'quote\\"and\\\\slash' in source  # labels are escaped


@needs_dot
@pytest.mark.parametrize("suffix, magic", [(".svg", b"<svg"), (".png", b"\x89PNG\r\n\x1a\n")])
def test_render_with_graphviz(tmp_path, suffix, magic):
    x = leaf([1.0, 2.0], "x")
    path = tmp_path / f"graph{suffix}"
    viz.draw((x * x).sum(), path)
    data = path.read_bytes()
    assert magic in data[:400]


def test_render_without_graphviz_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    graph = viz.draw(leaf([1.0], "x").exp())
    with pytest.raises(RuntimeError, match="apt-get install graphviz"):
        graph.render(tmp_path / "g.svg")
    assert graph._repr_svg_() is None
    with pytest.raises(ValueError, match="unknown format 'jpg'"):
        graph.render(tmp_path / "g.jpg")


# -- modules: recording and collapsing ---------------------------------------------------
class Affine(nn.Module):
    def __init__(self, n_in, n_out):
        super().__init__()
        self.weight = nn.Parameter(mg.randn(n_in, n_out, generator=mg.Generator(0)) * 0.5)
        self.bias = nn.Parameter(mg.zeros(n_out))

    def forward(self, x):
        return x @ self.weight + self.bias


class Block(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.fc = Affine(d, d)

    def forward(self, x):
        return x + self.fc(x).tanh()


class Net(nn.Module):
    def __init__(self, d=4, tie=False):
        super().__init__()
        self.h = nn.ModuleList([Block(d), Block(d)])
        self.head = Affine(d, d)
        if tie:
            self.head.weight = self.h[0].fc.weight

    def forward(self, x):
        for block in self.h:
            x = block(x)
        return (self.head(x) ** 2).mean()


def recorded_loss(net):
    x = leaf(np.ones((2, 4), dtype=np.float32), "x", requires_grad=False)
    with viz.record_modules(net):
        loss = net(x)
    return loss


def test_record_modules_tags_each_op_with_its_module():
    loss = recorded_loss(Net())
    graph = viz.draw(loss)
    modules = Counter((n.name, ".".join(n.module)) for n in graph.nodes.values()
                      if n.role == "op")
    assert modules == Counter({
        ("matmul", "h.0.fc"): 1, ("add", "h.0.fc"): 1, ("tanh", "h.0"): 1, ("add", "h.0"): 1,
        ("matmul", "h.1.fc"): 1, ("add", "h.1.fc"): 1, ("tanh", "h.1"): 1, ("add", "h.1"): 1,
        ("matmul", "head"): 1, ("add", "head"): 1, ("pow_scalar", ""): 1, ("mean", ""): 1})
    assert graph.module_classes[("h", "0")] == "Block"
    assert graph.module_classes[("h",)] == "ModuleList"
    source = graph.source
    assert 'subgraph "cluster_h.0.fc" {' in source
    assert 'label="h.0.fc (Affine)"' in source


def test_recording_stops_at_the_end_of_the_block():
    net = Net()
    recorded_loss(net)
    assert Function.observers == ()
    loss = net(mg.ones((2, 4)))
    assert all(not hasattr(n, "module_path") for n in _functions(loss))


def _functions(t):
    seen, stack = [], [t._ctx]
    while stack:
        fn = stack.pop()
        seen.append(fn)
        stack += [i._ctx for i in fn.inputs if i._ctx is not None]
    return seen


def test_collapse_groups_each_module_and_absorbs_its_parameters():
    net = Net()
    graph = viz.draw(recorded_loss(net), params=net, collapse=2)
    # h.0 and h.1 are two names deep: one box each. head is one name deep: a cluster
    # keeping its ops and parameters.
    assert roles(graph) == Counter({
        ("h.0", "module"): 1, ("h.1", "module"): 1, ("matmul", "op"): 1, ("add", "op"): 1,
        ("head.weight", "param"): 1, ("head.bias", "param"): 1, ("pow_scalar", "op"): 1,
        ("mean", "op"): 1, ("x", "constant"): 1, ("output", "output"): 1})
    labels = {n.name: n.label for n in graph.nodes.values()}
    assert labels["h.0"] == "h.0\nBlock\n4 ops, 2 params"
    activations = "(2, 4) float32"
    assert named_edges(graph) == Counter({
        ("x", "h.0", ""): 1, ("h.0", "h.1", activations): 1, ("h.1", "matmul", activations): 1,
        ("head.weight", "matmul", ""): 1, ("matmul", "add", activations): 1,
        ("head.bias", "add", ""): 1, ("add", "pow_scalar", activations): 1,
        ("pow_scalar", "mean", activations): 1, ("mean", "output", ""): 1})
    assert {n.name: n.module for n in graph.nodes.values() if n.module} == {
        "h.0": ("h",), "h.1": ("h",), "matmul": ("head",), "add": ("head",),
        "head.weight": ("head",), "head.bias": ("head",)}


def test_collapse_at_depth_one_merges_the_module_list():
    graph = viz.draw(recorded_loss(Net()), collapse=1)
    modules = {n.name: n.label for n in graph.nodes.values() if n.role == "module"}
    assert modules == {"h": "h\nModuleList\n8 ops, 4 params",
                       "head": "head\nAffine\n2 ops, 2 params"}


def test_tied_parameter_used_by_two_modules_stays_visible():
    net = Net(tie=True)
    graph = viz.draw(recorded_loss(net), params=net, collapse=1)
    edges = named_edges(graph)
    assert edges[("h.0.fc.weight", "h", "")] == 1
    assert edges[("h.0.fc.weight", "head", "")] == 1
    labels = {n.name: n.label for n in graph.nodes.values()}
    assert labels["h"].endswith("8 ops, 3 params")
    assert labels["head"].endswith("2 ops, 1 param")


def test_collapse_must_be_a_positive_depth():
    with pytest.raises(ValueError, match="collapse must be a depth >= 1"):
        viz.draw(leaf([1.0], "x").exp(), collapse=0)


def test_gpt_collapsed_to_blocks():
    from gpt.model import GPT, GPTConfig

    config = GPTConfig(vocab_size=13, block_size=8, n_layer=2, n_head=2, n_embd=8)
    model = GPT(config, generator=mg.Generator(0))
    ids = mg.randint(0, 13, (2, 8), generator=mg.Generator(1))
    with viz.record_modules(model):
        _, loss = model(ids, ids)
    full = viz.draw(loss, params=model)
    graph = viz.draw(loss, params=model, collapse=2)
    modules = {n.name: n.module for n in graph.nodes.values() if n.role == "module"}
    assert modules == {"h.0": ("h",), "h.1": ("h",)}
    assert len(graph.nodes) < len(full.nodes) / 2
    # wte is one name deep: a cluster holding its op and its weight.
    by_name = {n.name: n for n in graph.nodes.values()}
    assert by_name["embedding"].module == by_name["wte.weight"].module == ("wte",)
    assert math.isfinite(loss.item())
