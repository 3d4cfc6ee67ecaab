"""Errors and drop reports for input data.

Bad input never disappears silently: either a :class:`DataError` names the file, line and
field, or (when the caller asked to skip bad rows) a :class:`DropReport` counts what was
dropped, why, and gives example line numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class DataError(ValueError):
    """Malformed input, located as precisely as the source allows.

    Parameters
    ----------
    message : str
        What is wrong.
    path : str, optional
        The file (or ``"<dataframe>"``) the bad value came from.
    line : int, optional
        1-based line number in the file (the header, when present, is line 1).
    field : str, optional
        The column / field name.
    """

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None,
                 field: str | None = None):
        self.message = message
        self.path = path
        self.line = line
        self.field = field
        super().__init__(self._format())

    def _format(self) -> str:
        where = []
        if self.path is not None:
            where.append(str(self.path))
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.field is not None:
            where.append(f"field '{self.field}'")
        return f"{': '.join([', '.join(where)] if where else [])}{': ' if where else ''}{self.message}"


@dataclass
class DropReport:
    """Counts of rows dropped or merged while loading or splitting, by reason.

    ``examples`` keeps up to ``max_examples`` line numbers (or row indices) per reason so that a
    person can look at the offending input. ``notes`` counts rows that were kept but changed
    in a way a person should know about (ids read as text instead of integers, say); they are
    not part of ``total``.
    """

    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[int]] = field(default_factory=dict)
    max_examples: int = 5
    notes: dict[str, int] = field(default_factory=dict)

    def add(self, reason: str, n: int = 1, examples=()) -> None:
        if n <= 0:
            return
        self.counts[reason] = self.counts.get(reason, 0) + int(n)
        ex = self.examples.setdefault(reason, [])
        for e in examples:
            if len(ex) >= self.max_examples:
                break
            ex.append(int(e))

    def note(self, what: str, n: int) -> None:
        """Count ``n`` rows kept but changed as ``what`` says (not a drop)."""
        if n > 0:
            self.notes[what] = self.notes.get(what, 0) + int(n)

    def merge(self, other: DropReport) -> DropReport:
        for reason, n in other.counts.items():
            self.add(reason, n, other.examples.get(reason, ()))
        for what, n in other.notes.items():
            self.note(what, n)
        return self

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def __bool__(self) -> bool:
        return self.total > 0

    def to_dict(self) -> dict:
        out = {"counts": dict(self.counts),
               "examples": {k: list(v) for k, v in self.examples.items()}}
        if self.notes:
            out["notes"] = dict(self.notes)
        return out

    def __str__(self) -> str:
        parts = []
        for reason, n in self.counts.items():
            ex = self.examples.get(reason)
            parts.append(f"{n} {reason}" + (f" (e.g. {', '.join(map(str, ex))})" if ex else ""))
        if not parts:
            parts.append("nothing dropped")
        parts.extend(f"{n} {what}" for what, n in self.notes.items())
        return "; ".join(parts)
