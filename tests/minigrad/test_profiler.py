"""The op profiler: counts match the ops run, bytes match the arrays produced, timing
waits for the device, and nothing is observed outside the block."""

import pytest

import minigrad as mg
from minigrad.autograd import Function
from minigrad.instruments.profiler import Event, OpSummary


def run_step(x, w):
    loss = (x @ w).tanh().sum()
    loss.backward()
    return loss


def test_counts_match_the_ops_run(device):
    x = mg.randn(8, 4, device=device)
    w = mg.randn(4, 3, requires_grad=True, device=device)
    with mg.profile() as prof:
        for _ in range(3):
            run_step(x, w)
    rows = {r.name: r for r in prof.summary()}
    assert set(rows) == {"matmul", "tanh", "sum"}
    for row in rows.values():
        assert (row.forward_calls, row.backward_calls) == (3, 3)
    assert len(prof.events) == 18
    assert [e.name for e in prof.events[:3]] == ["matmul", "tanh", "sum"]
    assert [e.phase for e in prof.events[3:6]] == ["backward"] * 3
    assert [e.name for e in prof.events[3:6]] == ["sum", "tanh", "matmul"]  # reverse order


def test_ops_without_grad_are_counted_in_forward_only():
    with mg.profile() as prof, mg.no_grad():
        (mg.ones(3) * 2.0).exp()
    assert [(r.name, r.forward_calls, r.backward_calls) for r in prof.summary("name")] == [
        ("exp", 1, 0), ("mul_scalar", 1, 0)]


def test_bytes_are_those_of_the_arrays_produced():
    x = mg.randn(64, 32, dtype="float64")
    w = mg.randn(32, 16, requires_grad=True)  # float32
    with mg.profile() as prof:
        (x.astype("float32") @ w).sum().backward()
    forward = {e.name: e for e in prof.events if e.phase == "forward"}
    backward = {e.name: e for e in prof.events if e.phase == "backward"}
    assert forward["astype"].bytes == 64 * 32 * 4
    assert forward["matmul"].bytes == 64 * 16 * 4
    assert forward["sum"].bytes == 4
    assert forward["matmul"].shapes == ((64, 32), (32, 16))
    # astype's input needs no grad (x is data), so its backward never runs; matmul's
    # backward makes only w's gradient.
    assert "astype" not in backward
    assert backward["matmul"].bytes == 32 * 16 * 4
    assert backward["matmul"].shapes == ((32, 16),)
    row = {r.name: r for r in prof.summary()}["matmul"]
    assert row.bytes == 64 * 16 * 4 + 32 * 16 * 4


def test_multi_output_ops_count_every_output():
    x = mg.randn(6, 4, requires_grad=True)
    with mg.profile() as prof:
        x.split(2)
    (event,) = prof.events
    assert (event.name, event.bytes) == ("split", 6 * 4 * 4)


def test_times_are_positive_and_add_up():
    x = mg.randn(16, 16, requires_grad=True)
    with mg.profile() as prof:
        run_step(x, x)
    assert all(e.seconds > 0 for e in prof.events)
    rows = prof.summary()
    assert sum(r.total_time for r in rows) == pytest.approx(sum(e.seconds for e in prof.events))
    assert [r.total_time for r in rows] == sorted((r.total_time for r in rows), reverse=True)
    assert prof.wall_time >= sum(r.total_time for r in rows)


def test_timing_waits_for_the_device_on_both_sides(monkeypatch):
    device = mg.get_device("strict")
    calls = []
    monkeypatch.setattr(device, "synchronize", lambda: calls.append(1), raising=False)
    x = mg.randn(4, 4, requires_grad=True, device="strict")
    with mg.profile() as prof:
        run_step(x, x)
    assert len(calls) == 2 * len(prof.events)
    assert {e.device for e in prof.events} == {"strict"}


def test_no_implicit_host_transfer():
    strict = mg.get_device("strict")
    x = mg.randn(4, 4, requires_grad=True, device="strict")
    before = strict.host_transfers
    with mg.profile():
        run_step(x, x)
    assert strict.host_transfers == before


def test_summary_sorting_and_table():
    x = mg.randn(8, 8, requires_grad=True)
    with mg.profile() as prof:
        run_step(x, x)
        for _ in range(3):
            x.exp()
    assert [r.name for r in prof.summary("name")] == ["exp", "matmul", "sum", "tanh"]
    by_calls = prof.summary("calls")
    assert (by_calls[0].name, [r.calls for r in by_calls]) == ("exp", [3, 2, 2, 2])
    assert all(isinstance(r, OpSummary) for r in prof.summary())
    assert all(isinstance(e, Event) for e in prof.events)
    table = prof.table(sort_by="name")
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["op", "fwd", "calls"]
    assert [line.split()[0] for line in lines[2:6]] == ["exp", "matmul", "sum", "tanh"]
    assert lines[2].split()[1:3] == ["3", "0"]
    assert "9 op calls" in lines[-1]
    assert "... 3 more ops" in prof.table(limit=1)
    with pytest.raises(ValueError, match="unknown sort_by 'speed'.*total_time"):
        prof.table(sort_by="speed")


def test_nothing_is_observed_outside_and_after_errors():
    assert Function.observers == ()
    with pytest.raises(ZeroDivisionError), mg.profile() as prof:
        mg.ones(2).exp()
        raise ZeroDivisionError
    assert Function.observers == ()
    mg.ones(2).exp()
    assert len(prof.events) == 1


def test_nested_profilers_both_record():
    with mg.profile() as outer:
        mg.ones(2).exp()
        with mg.profile() as inner:
            mg.ones(2).log()
    assert [e.name for e in outer.events] == ["exp", "log"]
    assert [e.name for e in inner.events] == ["log"]
