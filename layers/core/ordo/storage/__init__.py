"""Storage adapters. Every key format, condition and index name lives in its adapter module."""
