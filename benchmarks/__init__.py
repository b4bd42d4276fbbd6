"""Benchmarks for segctl: a deterministic large-data generator and an evaluation benchmark.

Run ``python -m benchmarks.evaluate`` (1M persons, 10M events) or ``python -m
benchmarks.evaluate --quick`` (100k persons, 1M events); see benchmarks/README.md.
"""
