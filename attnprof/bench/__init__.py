"""Benchmarking the user's own modules with pytest-benchmark."""
