"""Test support: check a hand-written backward against finite differences.

- `gradcheck`: the gradient checker (`minigrad.gradcheck`, `minigrad.GradcheckError`);
- `strategies`: hypothesis strategies for op inputs and shapes. It needs `hypothesis` (a
  test dependency), so it loads only when imported: ``from minigrad.testing import
  strategies as mt``.
"""
