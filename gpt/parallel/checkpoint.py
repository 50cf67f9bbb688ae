"""Checkpoints of a parallel run: one run folder in the single-process format.

Saving: every rank sends its parameters and optimizer moments (host copies), named by
their place in the full model, to rank 0, which joins tensor-parallel pieces, builds
the full model and a plain AdamW holding the full state, and writes them with
`minigrad.io.save_checkpoint` (atomic files). The data streams' positions of all
replicas are merged into one. Loading: every rank reads the same folder into a full
model and optimizer and takes its own part, so the folder resumes under any layout (and
`python -m gpt sample` reads it as is). The random states saved are rank 0's.

Each rank's part is described by the `Parallel` object: `global_name(local name)` and
`tp_split(global name)` ((axis, sections) of a tensor-parallel shard, or None; see
`gpt.parallel.tensor`).
"""

from __future__ import annotations

import pickle

import numpy as np

import minigrad
from gpt.parallel.tensor import join_shards, shard_of
from minigrad import io, optim

MOMENTS = ("exp_avg", "exp_avg_sq")


def _full_model(model):
    """A whole GPT of the model's config and dtype, on the host, its weights to be
    overwritten (initialised from its own generator: the default one, which drives
    dropout, is left alone)."""
    from gpt.model import GPT

    dtype = next(iter(model.parameters())).dtype
    return GPT(model.config, generator=minigrad.Generator(0)).to(dtype=dtype)


def _full_optimizer(full_model, optimizer):
    groups = optimizer.param_groups
    decay = max(g["weight_decay"] for g in groups)
    return optim.AdamW(full_model.optimizer_groups(decay), lr=groups[0]["lr"],
                       betas=groups[0]["betas"], eps=groups[0]["eps"])


def _indexed_state(optimizer, named_states: dict, params_by_name: dict) -> dict:
    """A state_dict for `optimizer` from {name: {"step", moment arrays}}."""
    sd = optimizer.state_dict()
    index = {id(p): i for i, p in enumerate(p for g in optimizer.param_groups
                                            for p in g["params"])}
    sd["state"] = {index[id(params_by_name[name])]: s for name, s in named_states.items()}
    return sd


def local_pieces(parallel, model, states: dict) -> dict:
    """{global name: (weights, {"step", moments} or None)} of this rank, on the host."""
    pieces = {}
    for name, p in model.named_parameters():
        s = states.get(p)
        host = None if s is None else {"step": s["step"], **{
            k: p.device.to_host(s[k]) for k in MOMENTS}}
        pieces[parallel.global_name(name)] = (p.device.to_host(p.data), host)
    return pieces


def save(parallel, run_dir, model, optimizer, scheduler, **extra) -> None:
    from gpt.parallel.data import merge_states

    if "batches" in extra:
        extra["batches"] = merge_states(parallel.world.all_gather_object(extra["batches"]))
    states = parallel.param_states(model, optimizer)  # every rank: ZeRO-1 gathers here
    # The replicas now hold the same values: replica 0 sends.
    pieces = local_pieces(parallel, model, states) if parallel.replica == 0 else None
    gathered = parallel.world.gather_object(
        None if pieces is None else (parallel.shard, pieces), root=0)
    error = None
    if parallel.is_main:
        try:
            _write(parallel, run_dir, model, optimizer, scheduler, gathered, extra)
        except Exception as exc:  # e.g. non-finite weights: every rank must stop alike
            error = exc
    error = parallel.world.broadcast_object(_picklable(error), root=0)
    if error is not None:
        raise error


def _picklable(error):
    try:
        pickle.dumps(error)
        return error
    except Exception:
        return RuntimeError(f"{type(error).__name__}: {error}")


def _write(parallel, run_dir, model, optimizer, scheduler, gathered, extra) -> None:
    """Rank 0: the full model and optimizer from the gathered pieces, saved."""
    by_name: dict = {}
    for item in filter(None, gathered):
        shard, named = item
        for name, piece in named.items():
            by_name.setdefault(name, {})[shard] = piece
    full = _full_model(model)
    weights, states = {}, {}
    for name, shards in by_name.items():
        split = parallel.tp_split(name)
        ordered = [shards[i] for i in sorted(shards)]
        if split is None:
            weights[name], state = ordered[0]
        else:
            weights[name] = join_shards(np, [w for w, _ in ordered], *split)
            state = None if ordered[0][1] is None else {"step": ordered[0][1]["step"], **{
                k: join_shards(np, [s[k] for _, s in ordered], *split) for k in MOMENTS}}
        if state is not None:
            states[name] = state
    full.load_state_dict(weights)
    full_optimizer = _full_optimizer(full, optimizer)
    params = dict(full.named_parameters())
    full_optimizer.load_state_dict(_indexed_state(full_optimizer, states, params))
    io.save_checkpoint(run_dir, full, full_optimizer, scheduler, **extra)


def load(parallel, run_dir, model, optimizer, scheduler, device=None) -> dict:
    full = _full_model(model)
    full_optimizer = _full_optimizer(full, optimizer)
    extra = io.load_checkpoint(run_dir, full, full_optimizer, scheduler)
    full_params = dict(full.named_parameters())
    saved = full_optimizer.state_dict()["state"]
    index = {id(p): i for i, p in enumerate(p for g in full_optimizer.param_groups
                                            for p in g["params"])}
    states = {}
    for name, p in model.named_parameters():
        gname = parallel.global_name(name)
        source = full_params[gname]
        s = saved.get(index[id(source)])
        arrays = {"weight": source.numpy(), **({} if s is None else
                                                {k: s[k].numpy() for k in MOMENTS})}
        split = parallel.tp_split(gname)
        if split is not None:
            arrays = {k: shard_of(np, a, *split, parallel.layout.tp, parallel.shard)
                      for k, a in arrays.items()}
        p.data = p.device.asarray(arrays.pop("weight").astype(p.dtype))
        if s is not None:
            states[p] = {"step": s["step"], **{
                k: p.device.asarray(arrays[k].astype(p.dtype)) for k in MOMENTS}}
    parallel.load_param_states(model, optimizer, states)
    return extra
