"""Benchmarks: each prints JSON and records its floor in the same run."""
