"""Benchmarks for fullbay_dagster: ``python benchmarks/run.py [--quick]`` (see README.md)."""
