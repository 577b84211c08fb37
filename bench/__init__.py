"""Benchmarks: ``python -m bench.run`` (``make bench``) and single-purpose scripts."""
