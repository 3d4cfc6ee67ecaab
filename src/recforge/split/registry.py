"""Splitters by name: every split function registers itself here with :func:`splitter`.

A protocol (:mod:`recforge.evaluation.protocols`) and the ``recforge bakeoff`` command look a
split up by name, so any split works in a bake-off; adding a split is one decorated function.
:meth:`Splitter.split` always returns a list of :class:`SplitResult` (one for a single split,
``n_folds`` for k-fold), so callers never care which kind they got.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

from ._result import SplitResult

#: Kinds of data a splitter accepts.
INPUTS = ("interactions", "sessions")


@dataclass(frozen=True)
class Splitter:
    """A registered split function.

    Attributes
    ----------
    name : str
        The registry name (the function's name).
    function : callable
        ``function(data, **params)`` returning a :class:`SplitResult` or a list of them.
    input : {'interactions', 'sessions'}
        The data it splits.
    """

    name: str
    function: Callable
    input: str

    @property
    def params(self) -> tuple[str, ...]:
        """Names of the keyword parameters the split takes (besides the data)."""
        sig = inspect.signature(self.function)
        return tuple(list(sig.parameters)[1:])

    @property
    def seeded(self) -> bool:
        """Whether the split draws random numbers (takes a ``seed``)."""
        return "seed" in self.params

    def check_params(self, params: dict) -> None:
        """Raise ``ValueError`` naming the parameters the split does not take."""
        unknown = sorted(set(params) - set(self.params))
        if unknown:
            raise ValueError(f"split {self.name!r} takes {', '.join(self.params) or 'no parameters'}; "
                             f"unknown: {', '.join(unknown)}")

    def split(self, data, **params) -> list[SplitResult]:
        """Run the split; always a list (one element for single splits, one per fold for k-fold)."""
        self.check_params(params)
        out = self.function(data, **params)
        return list(out) if isinstance(out, (list, tuple)) else [out]


SPLITTERS: dict[str, Splitter] = {}


def splitter(input: str):
    """Decorator registering a split function under its own name; returns it unchanged."""
    if input not in INPUTS:
        raise ValueError(f"input must be one of {INPUTS}, got {input!r}")

    def register(function: Callable) -> Callable:
        name = function.__name__
        if name in SPLITTERS:
            raise ValueError(f"a splitter named {name!r} is already registered")
        SPLITTERS[name] = Splitter(name, function, input)
        return function

    return register


def get_splitter(name: str) -> Splitter:
    """The registered splitter ``name``; ``ValueError`` listing the known names otherwise."""
    try:
        return SPLITTERS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown split {name!r}; known: {', '.join(available_splitters())}") from None


def available_splitters() -> list[str]:
    """Names of every registered splitter, sorted."""
    return sorted(SPLITTERS)
