"""nnspec's version: that of the nnspec-runtime it requires at exactly the same version
(``runtime/nnspec_runtime/_version.py`` is the one place it is written)."""

from nnspec_runtime._version import __version__

__all__ = ["__version__"]
