"""The layer registry: ``kind`` -> ``LayerKind``, in registration order, no kind twice.

Everything that depends on the set of kinds reads it from here: the spec's ``layers`` union,
the network builder, the ONNX lowering, ``init.from``, the memory estimate, the docs and the
generic tests. A kind registered later (a plugin) reaches all of them: whoever derives a value
from the registry that must follow it (the spec model) asks to be told with ``on_change``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Annotated, Any, Union

from pydantic import Field

from .base import LayerKind


class Registry(Mapping[str, LayerKind]):
    """A read-only mapping from kind names to records; ``register`` is the only way in."""

    def __init__(self) -> None:
        self._kinds: dict[str, LayerKind] = {}
        self._listeners: list[Callable[[], None]] = []

    def register(self, *kinds: LayerKind) -> None:
        """Add ``kinds`` (in order). A name that is taken is refused, and nothing is added:
        two modules defining one kind would otherwise silently shadow each other."""
        new: dict[str, LayerKind] = {}
        for kind in kinds:
            if not isinstance(kind, LayerKind):
                got = (
                    f"the class {kind.__name__}" if isinstance(kind, type) else type(kind).__name__
                )
                raise TypeError(f"expected a LayerKind record, got {got}")
            name = kind.name  # TypeError for a spec model without a kind literal
            taken = self._kinds.get(name) or new.get(name)
            if taken is not None:
                raise ValueError(
                    f"layer kind {name!r} is already registered (spec "
                    f"{_where(taken.spec)}); expected a new kind name for {_where(kind.spec)}"
                )
            new[name] = kind
        self._kinds.update(new)
        for listener in self._listeners:
            listener()

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` after every registration."""
        self._listeners.append(listener)

    def __getitem__(self, name: str) -> LayerKind:
        try:
            return self._kinds[name]
        except KeyError:
            raise KeyError(
                f"unknown layer kind {name!r}; expected one of the registered kinds: "
                f"{', '.join(self._kinds)}"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._kinds)

    def __len__(self) -> int:
        return len(self._kinds)

    def spec_union(self) -> Any:
        """The type that a spec's ``layers`` items are validated against: the registered spec
        models as a union discriminated by ``kind`` (one model on its own needs none)."""
        specs = tuple(kind.spec for kind in self._kinds.values())
        if not specs:
            raise LookupError("no layer kind is registered")
        if len(specs) == 1:
            return specs[0]
        return Annotated[Union[specs], Field(discriminator="kind")]  # noqa: UP007

    def array_names(self) -> frozenset[str]:
        """Every array name that some kind keeps per layer (the keys of ``input_axes``)."""
        return frozenset(name for kind in self._kinds.values() for name in kind.input_axes)


def _where(spec: type) -> str:
    return f"{spec.__module__}.{spec.__qualname__}"
