"""Benchmarks: run each as ``python -m benchmarks <name>`` from the repository root
(``python -m benchmarks`` lists them); ``timing.py`` is how they all time and report."""
