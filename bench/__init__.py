"""Benchmarks that run the ``sam build`` artifact the way Lambda does."""
