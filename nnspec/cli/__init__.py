"""The ``nnspec`` command: argparse and thin handlers over ``nnspec.pipeline``."""

from .commands import main, parser

__all__ = ["main", "parser"]
