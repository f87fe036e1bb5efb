"""The toolkit's version, in a module of its own so that any module can read it without
importing the ``interp`` package (and everything its ``__init__`` imports)."""

__version__ = "0.1.0"
