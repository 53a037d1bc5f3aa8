"""Generators of docs/spec.md and docs/onnx.md (``python -m nnspec._docgen.spec_md`` ...)."""
