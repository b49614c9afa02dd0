"""The ``cbackprop`` command (also ``python -m cbackprop``)."""
from cbackprop.cli.data import main

__all__ = ["main"]
