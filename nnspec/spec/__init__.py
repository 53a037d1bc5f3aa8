"""The spec stage: YAML with locations, the spec models, cross-field rules, shape inference and
the memory estimate. ``load_spec`` / ``parse_spec`` give a validated ``Spec`` or a located error.
"""

from .models import Spec, load_spec, parse_spec

__all__ = ["Spec", "load_spec", "parse_spec"]
