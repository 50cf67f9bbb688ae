"""ZeRO stage 1 (Rajbhandari et al. 2020): the optimizer state sharded over the
data-parallel replicas.

Each parameter group's parameters are laid end to end in one flat vector (padded with
zeros to a multiple of the replica count dp); replica r owns the r-th of dp equal
slices. A step:

    gradients:  reduce-scatter of the flat gradient / dp -> my slice of the mean gradient
    update:     AdamW on my slice only (its moments are all of the state I keep)
    parameters: all-gather of the updated slices -> every replica's full weights

Reduce-scatter plus all-gather move as many bytes as the all-reduce of plain data
parallelism, and the Adam moments (2 floats per parameter, 8 bytes in float32) shrink
to 1/dp on each rank. AdamW is elementwise, so the slices' updates are exactly the
full update.
"""

from __future__ import annotations

from minigrad import Tensor, optim
from minigrad.nn.parameter import Parameter, zero_grads

HYPERPARAMETERS = ("lr", "betas", "eps", "weight_decay")


class _FlatGroup:
    """One parameter group laid out flat, and this replica's slice of it."""

    def __init__(self, params, comm):
        self.params, self.comm = params, comm
        self.numel = sum(p.numel() for p in params)
        self.padded = -(-self.numel // comm.size) * comm.size
        self.slice_size = self.padded // comm.size
        self.lo = comm.rank * self.slice_size
        self.xp = params[0].device.xp

    def flat(self, arrays):
        xp = self.xp
        flat = xp.concat([xp.reshape(a, (-1,)) for a in arrays])
        pad = self.padded - self.numel
        return xp.concat([flat, xp.zeros((pad,), dtype=flat.dtype)]) if pad else flat

    def my_slice(self, flat):
        return flat[self.lo:self.lo + self.slice_size]

    def unflat(self, flat) -> list:
        out, offset = [], 0
        for p in self.params:
            out.append(self.xp.reshape(flat[offset:offset + p.numel()], p.shape))
            offset += p.numel()
        return out


class Zero1(optim.AdamW):
    """An AdamW over this replica's slices, standing in for `optimizer` (a plain AdamW
    over the model's parameters, whose groups and hyperparameters it takes)."""

    def __init__(self, optimizer: optim.AdamW, comm):
        self.comm = comm
        self.flat_groups = [_FlatGroup(g["params"], comm) for g in optimizer.param_groups]
        groups = []
        for group, fg in zip(optimizer.param_groups, self.flat_groups):
            shard = Parameter(fg.my_slice(fg.flat([p.data for p in fg.params])))
            groups.append({"params": [shard], **{k: group[k] for k in HYPERPARAMETERS}})
        first = optimizer.param_groups[0]
        super().__init__(groups, lr=first["lr"], betas=first["betas"], eps=first["eps"])
        self.shards = [g["params"][0] for g in self.param_groups]

    def reduce_scatter_gradients(self) -> None:
        """My slice of the replicas' mean gradient, as the shards' gradients."""
        from gpt.parallel.gradients import flat_gradients

        for fg, shard in zip(self.flat_groups, self.shards):
            flat = flat_gradients(fg.params, fg.xp)
            pad = fg.padded - fg.numel
            if pad:
                flat = fg.xp.concat([flat, fg.xp.zeros((pad,), dtype=flat.dtype)])
            shard.grad = Tensor(self.comm.reduce_scatter(flat) * (1.0 / self.comm.size))

    def step(self, closure=None):
        loss = super().step(closure)
        for fg, shard in zip(self.flat_groups, self.shards):  # everyone's updated slices
            full = self.comm.all_gather(shard.data)
            for p, array in zip(fg.params, fg.unflat(full)):
                p.data = array
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        super().zero_grad(set_to_none)
        zero_grads((p for fg in self.flat_groups for p in fg.params),
                                         set_to_none)

    def flat_weights(self, weight_of) -> list:
        """Per shard, the norm weight of each of its elements (weight_of(parameter))."""
        out = []
        for fg in self.flat_groups:
            xp = fg.xp
            dtype = fg.params[0].dtype
            flat = fg.flat([xp.full(p.shape, weight_of(p), dtype=dtype) for p in fg.params])
            out.append(fg.my_slice(flat))
        return out

    # -- the full state, for checkpoints -------------------------------------------
    def param_states(self) -> dict:
        """{model parameter: {"step", moments}}, gathered from all replicas."""
        states = {}
        for fg, shard in zip(self.flat_groups, self.shards):
            s = self.state.get(shard)
            if s is None:
                continue
            moments = {k: fg.unflat(self.comm.all_gather(s[k])) for k in self.state_names}
            for i, p in enumerate(fg.params):
                states[p] = {"step": s["step"], **{k: moments[k][i] for k in moments}}
        return states

    def load_param_states(self, states: dict) -> None:
        """Take my slices of the moments in `states`, and of the model's weights (which
        a checkpoint has just replaced)."""
        for fg, shard in zip(self.flat_groups, self.shards):
            shard.data = fg.my_slice(fg.flat([p.data for p in fg.params]))
        sd = self.state_dict()
        sd["state"] = {}
        for i, fg in enumerate(self.flat_groups):
            if all(p in states for p in fg.params):
                sd["state"][i] = {"step": states[fg.params[0]]["step"], **{
                    k: fg.my_slice(fg.flat([states[p][k] for p in fg.params]))
                    for k in self.state_names}}
        self.load_state_dict(sd)

    def memory(self) -> dict:
        """Bytes of optimizer state per rank: with ZeRO-1, and what plain data
        parallelism would hold."""
        per_element = len(self.state_names) * self.shards[0].data.dtype.itemsize
        sharded = sum(fg.slice_size for fg in self.flat_groups) * per_element
        return {"optimizer_state_bytes": sharded,
                "unsharded_bytes": sum(fg.numel for fg in self.flat_groups) * per_element}
