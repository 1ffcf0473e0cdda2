"""Benchmark suites, their runner and the recorded results (benchmarks/results/)."""
