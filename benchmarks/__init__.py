"""Benchmarks: `make bench` (benchmarks.run) and one module per measured capability."""
