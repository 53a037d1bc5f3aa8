"""Numerics: activations, losses, initializers, the packed parameter buffers and the network.

Nothing here imports the trainer or the ONNX I/O: they build on it, not the other way round.
"""
