"""The ``ordo`` command-line client."""
