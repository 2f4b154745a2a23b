"""Benchmarks: the direct Triton path against the API path, and the API's own ceiling.

``python -m benchmarks.run_all`` installs its tools, runs everything and writes
``benchmarks/results``; see ``benchmarks/README.md``.
"""
