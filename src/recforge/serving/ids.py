"""Raw ids at the HTTP edge -> each model's raw id type.

URLs carry ids as text and JSON bodies as text or numbers, while a model's id maps hold int64
or text ids (:func:`recforge.data.idmap.normalize_raw_ids`). An id that cannot be of the
model's type (``"abc"`` for int64 ids) is simply unknown to it.
"""

from __future__ import annotations

import numpy as np

from ..data.idmap import IdMap

_INT64 = np.iinfo(np.int64)


def _as_int(value) -> int | None:
    """``value`` as an int64 id, or None when it cannot be one (text, out of range)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, np.integer)):
        number = int(value)
    else:
        try:
            text = str(value).strip()
            if not (text.lstrip("+-").isascii() and text.lstrip("+-").isdigit()):
                return None
            number = int(text)
        except (TypeError, ValueError):
            return None
    return number if _INT64.min <= number <= _INT64.max else None


def to_model_ids(values, idmap: IdMap) -> tuple[np.ndarray, np.ndarray]:
    """``(ids, known)``: the values as ``idmap``'s raw type (object array; unknown entries are
    placeholders) and a mask of those the map holds."""
    values = list(values)
    if not values:
        return np.empty(0, dtype=object), np.zeros(0, dtype=bool)
    if idmap.raw.dtype.kind in "iu":
        conv = [_as_int(v) for v in values]
        ok = np.array([c is not None for c in conv])
        ids = np.array([c if c is not None else 0 for c in conv], dtype=np.int64)
    else:
        ok = np.ones(len(values), dtype=bool)
        ids = np.array([str(v) for v in values], dtype=object)
    inner = idmap.to_inner(ids, missing="mask")
    known = ok & (inner >= 0)
    return np.asarray(ids, dtype=object), known


def known_ids(values, idmap: IdMap) -> tuple[list, int]:
    """The values the map holds, as its raw type, and how many it does not."""
    ids, known = to_model_ids(values, idmap)
    return ids[known].tolist(), int((~known).sum())


def to_json_id(value):
    """A raw id as a JSON value (numpy scalars -> Python)."""
    return value.item() if isinstance(value, np.generic) else value
