"""Benchmarks: `python -m bench.pipeline` prints the pipeline's speed and memory figures."""
