"""Run under mpiexec -n 2 (or more), optionally with a device argument (cpu: MPI, the
default; cuda: NCCL, one GPU per rank): checks every Communicator primitive and the
differentiable collectives against what they must compute; exits non-zero on failure."""

import sys

import numpy as np

import minigrad
from minigrad.distributed import (
    copy_to_parallel,
    gather_from_parallel,
    reduce_from_parallel,
    scatter_to_parallel,
    world,
)

device_name = sys.argv[1] if len(sys.argv) > 1 else "cpu"
if device_name == "cuda":
    import cupy

    cupy.cuda.Device(int(__import__("os").environ.get("MPI_LOCALRANKID", 0))).use()
comm = world(device_name)
r, n = comm.rank, comm.size
device = minigrad.get_device("cuda" if device_name == "cuda" else "cpu")
on, host = device.asarray, device.to_host  # test data is made on the host
_equal = np.testing.assert_array_equal
np.testing.assert_array_equal = lambda got, want: _equal(host(got), want)
x = np.arange(6, dtype=np.float64).reshape(2, 3) + 10 * r  # rank r's data
everyone = [np.arange(6, dtype=np.float64).reshape(2, 3) + 10 * q for q in range(n)]

x = on(x)
np.testing.assert_array_equal(comm.all_reduce(x), sum(everyone))
np.testing.assert_array_equal(comm.all_gather(x), np.concatenate(everyone))
stacked = np.arange(4 * n, dtype=np.float32).reshape(2 * n, 2) * (r + 1)
total = sum(np.arange(4 * n, dtype=np.float32).reshape(2 * n, 2) * (q + 1) for q in range(n))
np.testing.assert_array_equal(comm.reduce_scatter(on(stacked)), total[2 * r:2 * r + 2])
np.testing.assert_array_equal(comm.broadcast(x, root=n - 1), everyone[n - 1])
assert comm.all_reduce(x.T).shape == (3, 2)  # non-contiguous input
try:
    comm.reduce_scatter(on(np.zeros(2 * n + 1)))
    raise AssertionError("reduce_scatter accepted an axis that does not split")
except ValueError as exc:
    assert "equal chunks" in str(exc)

# Point to point: a ring, each rank sends to the next.
if r % 2 == 0:
    comm.send(x, (r + 1) % n)
    got = comm.recv(x.shape, x.dtype, (r - 1) % n)
else:
    got = comm.recv(x.shape, x.dtype, (r - 1) % n)
    comm.send(x, (r + 1) % n)
np.testing.assert_array_equal(got, everyone[(r - 1) % n])
got = comm.send_recv(x, (r + 1) % n, x.shape, x.dtype, (r - 1) % n)  # everyone at once
np.testing.assert_array_equal(got, everyone[(r - 1) % n])

# Sub-communicators: even and odd ranks; color None leaves a rank out.
sub = comm.split(r % 2, key=-r)
members = [q for q in range(n) if q % 2 == r % 2]
assert sub.size == len(members) and sub.rank == sorted(members, reverse=True).index(r)
np.testing.assert_array_equal(sub.all_reduce(x), sum(everyone[q] for q in members))
assert (comm.split(None if r else 0) is None) == (r != 0)
assert comm.all_gather_object({"rank": r}) == [{"rank": q} for q in range(n)]
assert comm.broadcast_object(f"from {r}", root=0) == "from 0"
comm.barrier()

# Differentiable collectives: forward values and hand-written backwards.
t = minigrad.Tensor(x, requires_grad=True)
y = copy_to_parallel(t, comm)
np.testing.assert_array_equal(y.data, x)
(y * (r + 1.0)).sum().backward()  # d/dx on rank r is (r + 1); summed over the ranks
np.testing.assert_array_equal(t.grad.data, np.full(x.shape, sum(range(1, n + 1))))

t = minigrad.Tensor(x, requires_grad=True)
y = reduce_from_parallel(t, comm)
np.testing.assert_array_equal(y.data, sum(everyone))
(y * (r + 1.0)).sum().backward()
np.testing.assert_array_equal(t.grad.data, np.full(x.shape, r + 1.0))  # identity backward

t = minigrad.Tensor(x, requires_grad=True)
y = gather_from_parallel(t, comm)
np.testing.assert_array_equal(y.data, np.concatenate(everyone, axis=-1))
weights = np.arange(y.numel(), dtype=np.float64).reshape(y.shape)
(y * minigrad.Tensor(on(weights))).sum().backward()
np.testing.assert_array_equal(t.grad.data, weights[:, 3 * r:3 * r + 3])

wide = np.arange(2 * 2 * n, dtype=np.float64).reshape(2, 2 * n)  # the same on every rank
t = minigrad.Tensor(on(wide), requires_grad=True)
y = scatter_to_parallel(t, comm)
np.testing.assert_array_equal(y.data, wide[:, 2 * r:2 * r + 2])
(y * (r + 1.0)).sum().backward()
expected = np.concatenate([np.full((2, 2), q + 1.0) for q in range(n)], axis=-1)
np.testing.assert_array_equal(t.grad.data, expected)  # each rank's chunk, gathered
print(f"rank {r}: communicator contract ok")
