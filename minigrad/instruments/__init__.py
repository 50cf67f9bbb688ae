"""Instruments for looking inside the engine while it runs; none changes a result.

- `viz`: draw the computation graph behind a tensor (also reachable as `minigrad.viz`);
- `anomaly`: find the op that first made a NaN or an infinity (`minigrad.detect_anomaly`);
- `profiler`: count and time each op, forward and backward (`minigrad.profile`);
- `plots`: PNG plots of gradient flow and attention maps (needs matplotlib).

All of them watch ops through `Function` observers (see `minigrad.autograd`), so they cost
nothing while off.
"""
