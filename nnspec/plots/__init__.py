"""Plots of what a network learned (``nnspec plot``; matplotlib, the optional extra ``plot``).

Each plot function returns a ``matplotlib.figure.Figure`` (on an Agg canvas, no pyplot);
``save`` writes it as PNG or SVG. Nothing here imports matplotlib until a plot is drawn, so
``import nnspec.plots`` is cheap and works without it.
"""
