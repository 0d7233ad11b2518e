"""Benchmarks: each script compares a pipeline stage with a bare baseline measured in the same run."""
