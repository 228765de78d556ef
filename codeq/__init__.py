"""codeq: a durable task queue server, its worker runtime and its command line."""

from codeq.hookspecs import hookimpl

__version__ = "0.1.0"
__all__ = ["__version__", "hookimpl"]
