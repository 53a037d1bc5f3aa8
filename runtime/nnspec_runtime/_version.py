"""The one place the version is written: nnspec-runtime's, and nnspec's (which requires
nnspec-runtime at exactly this version and reads it from here; the top-level setup.py reads
this file for nnspec's metadata, runtime/pyproject.toml for the runtime's)."""

__version__ = "0.2.0"
