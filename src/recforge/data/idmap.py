"""Stable mapping between raw ids (as found in the source) and dense inner indices."""

from __future__ import annotations

import numpy as np
import pandas as pd

_INT64_MAX = np.iinfo(np.int64).max
_INT64_MIN = np.iinfo(np.int64).min


def normalize_raw_ids(values) -> np.ndarray:
    """Return raw ids as an ``int64`` array when they are all integers that fit int64, else as a
    unicode array.

    Both dtypes round-trip through ``.npz`` without pickle, which is why object arrays are
    never kept. Ids that are not all int64 integers (floats such as ``1e30``, integers beyond
    int64, a mix of types) become text, never a wrapped or saturated integer, so two distinct
    raw ids never share one inner index. A unicode array cannot hold a trailing NUL character
    (``"a\x00"`` would become ``"a"`` and merge with it), so such ids are refused with a
    ``ValueError`` naming one. :func:`raw_ids_as_text_reason` says why ids became text.
    """
    return _normalize(values)[0]


def raw_ids_as_text_reason(values) -> str | None:
    """Why :func:`normalize_raw_ids` keeps ``values`` as text ids, or ``None`` when it keeps
    them as int64 (or they were text to begin with). Used to report the conversion."""
    return _normalize(values)[1]


def _normalize(values) -> tuple[np.ndarray, str | None]:
    if isinstance(values, (list, tuple)):
        values = np.array(values, dtype=object) if any(
            isinstance(v, (str, int)) and not isinstance(v, bool) for v in values) else values
    arr = np.asarray(values)
    if arr.dtype.kind == "i":
        return arr.astype(np.int64, copy=False), None
    if arr.dtype.kind == "u":
        if arr.size and int(arr.max()) > _INT64_MAX:
            return arr.astype(str), "unsigned integers beyond int64"
        return arr.astype(np.int64), None
    if arr.dtype.kind == "f":
        if arr.size == 0:
            return arr.astype(np.int64), None
        with np.errstate(invalid="ignore"):
            integral = np.all(np.isfinite(arr)) and np.all(arr == np.round(arr))
            fits = integral and np.all(np.abs(arr) < 2.0 ** 63)
        if fits:
            return arr.astype(np.int64), None
        # numpy writes the shortest text that reads back as the same float: distinct floats
        # stay distinct
        return arr.astype(str), ("floats beyond int64" if integral else "non-integer floats")
    if arr.dtype.kind == "b":
        return arr.astype(np.int64), None
    if arr.dtype.kind in "US":
        return arr.astype(str), None
    # object: python ints that fit int64 stay ints, anything else becomes str
    flat = arr.ravel()
    if flat.size and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                         for v in flat):
        if all(_INT64_MIN <= int(v) <= _INT64_MAX for v in flat):
            return arr.astype(np.int64), None
        reason = "integers beyond int64"
    else:
        reason = None if all(isinstance(v, str) for v in flat) else "mixed types"
    _refuse_trailing_nul(arr)
    return arr.astype(str), reason


def _exact_int64(values) -> tuple[np.ndarray, np.ndarray]:
    """The int64 value of each id that names one exactly (``7``, ``"7"``, ``"+7"``, ``7.0``,
    ``"7.0"``), and a mask of those; floats count only below 2**53, where they are exact."""
    ints = np.zeros(len(values), dtype=np.int64)
    ok = np.zeros(len(values), dtype=bool)
    for k, v in enumerate(values):
        if isinstance(v, (bool, np.bool_)):
            continue
        if isinstance(v, (int, np.integer)):
            n = int(v)
        else:
            text = v.decode() if isinstance(v, bytes) else v
            if isinstance(text, str) and "_" in text:  # int() would read "1_0" as 10
                continue
            try:
                n = int(text.strip()) if isinstance(text, str) else None
            except ValueError:
                n = None
            if n is None:
                try:
                    f = float(text)
                except (TypeError, ValueError):
                    continue
                if not (np.isfinite(f) and f == round(f) and abs(f) < 2.0 ** 53):
                    continue
                n = int(f)
        if _INT64_MIN <= n <= _INT64_MAX:
            ints[k], ok[k] = n, True
    return ints, ok


def _refuse_trailing_nul(arr: np.ndarray) -> None:
    try:
        ends = pd.Series(arr.ravel()).str.endswith("\x00").to_numpy(dtype=object) == True  # noqa: E712
    except AttributeError:  # no string at all
        return
    if ends.any():
        bad = arr.ravel()[int(np.flatnonzero(ends)[0])]
        raise ValueError(f"raw id {bad!r} ends with a NUL character, which a string id "
                         "array cannot store; clean the ids first")


class IdMap:
    """Raw id <-> inner index map; the inner index of a raw id is its position in ``raw``.

    The order is fixed at construction (sorted unique raw ids unless given explicitly) and never
    changes, so train and test parts of a split share one map and one index space.

    Parameters
    ----------
    raw : array-like
        Unique raw ids in inner-index order.
    """

    __slots__ = ("raw", "_index", "_sorted")

    #: Lookups of at most this many ids use a binary search over a sorted copy of the raw ids
    #: instead of ``pandas.Index.get_indexer``, whose fixed cost (about 0.1 ms for integers and
    #: 0.25 ms for text under pandas 3) dominates the one-user queries of the service.
    SMALL_LOOKUP = 512

    def __init__(self, raw):
        self.raw = normalize_raw_ids(raw)
        self._index = pd.Index(self.raw)
        self._sorted = None  # (sorted raw ids, their inner indices), built on first small lookup
        if not self._index.is_unique:
            raise ValueError("IdMap: raw ids must be unique")

    @classmethod
    def from_values(cls, values) -> tuple[IdMap, np.ndarray]:
        """Build a map over the sorted unique ``values`` and return it with their inner codes."""
        vals = normalize_raw_ids(values)
        uniq, codes = np.unique(vals, return_inverse=True)
        return cls(uniq), codes.astype(np.int32)

    def __len__(self) -> int:
        return len(self.raw)

    def __eq__(self, other) -> bool:
        return isinstance(other, IdMap) and self.raw.dtype.kind == other.raw.dtype.kind and \
            np.array_equal(self.raw, other.raw)

    def __hash__(self):  # maps are compared by content; identity hash keeps them usable as keys
        return id(self)

    def __repr__(self) -> str:
        return f"IdMap(n={len(self)}, dtype={self.raw.dtype})"

    def to_inner(self, raw_ids, missing: str = "raise") -> np.ndarray:
        """Inner indices (``int32``) of ``raw_ids``.

        ``missing='raise'`` raises :class:`KeyError` naming the first unknown id;
        ``missing='mask'`` returns ``-1`` for unknown ids.
        """
        if missing not in ("raise", "mask"):
            raise ValueError("missing must be 'raise' or 'mask'")
        arr = np.atleast_1d(np.asarray(raw_ids))
        if self.raw.dtype.kind in "iu" and arr.dtype.kind in "USO":
            # ids given as strings for an integer map: convert where possible, element-wise, so
            # that one unparsable id does not make the parsable ones unknown
            try:
                if arr.dtype.kind == "O":  # astype would truncate 1.5 to 1
                    raise TypeError
                idx = self._get_indexer(arr.astype(np.int64))
            except (TypeError, ValueError, OverflowError):
                ints, ok = _exact_int64(arr.ravel())
                idx = np.full(arr.shape, -1, dtype=np.int32)
                idx.ravel()[ok] = self._get_indexer(ints[ok])
        else:
            if self.raw.dtype.kind == "U" and arr.dtype.kind != "U":
                # integral floats (1.0) must match "1", as normalize_raw_ids would have stored it
                arr = normalize_raw_ids(arr).astype(str)
            idx = self._get_indexer(arr)
        if missing == "raise" and (idx < 0).any():
            bad = arr[np.flatnonzero(idx < 0)[0]]
            raise KeyError(f"unknown id {bad!r}")
        return idx

    def _get_indexer(self, arr: np.ndarray) -> np.ndarray:
        """Inner indices (``int32``, -1 unknown) of ids already in the map's raw kind."""
        if arr.size > self.SMALL_LOOKUP or arr.dtype.kind == "O" or self.raw.size == 0:
            return self._index.get_indexer(arr.ravel()).astype(np.int32).reshape(arr.shape)
        if self._sorted is None:
            order = np.argsort(self.raw, kind="stable")
            self._sorted = (self.raw[order], order.astype(np.int32))
        keys, inner = self._sorted
        flat = arr.ravel()
        if (flat.dtype.kind in "iu") != (keys.dtype.kind in "iu"):
            return self._index.get_indexer(flat).astype(np.int32).reshape(arr.shape)
        pos = np.minimum(np.searchsorted(keys, flat), keys.size - 1)
        found = keys[pos] == flat
        return np.where(found, inner[pos], -1).astype(np.int32).reshape(arr.shape)

    def grow(self, raw_ids) -> tuple[IdMap, np.ndarray]:
        """A map with the unknown ``raw_ids`` appended (existing inner indices unchanged), and
        the inner indices of ``raw_ids`` in it. Used by incremental updates."""
        raw = normalize_raw_ids(np.atleast_1d(np.asarray(raw_ids)))
        if raw.size and self.raw.size and (raw.dtype.kind in "iu") != (self.raw.dtype.kind in "iu"):
            raise TypeError(f"IdMap.grow: {raw.dtype} ids for a map of {self.raw.dtype} ids")
        idx = self.to_inner(raw, missing="mask")
        new = pd.unique(raw[idx < 0])
        if not len(new):
            return self, idx
        # the new ids keep their own (normalised) dtype: concatenation widens a string map to
        # the longest id instead of cutting new ids to the old width
        grown = IdMap(np.concatenate([self.raw, np.asarray(new, dtype=raw.dtype)]))
        return grown, grown.to_inner(raw)

    def to_raw(self, inner) -> np.ndarray:
        """Raw ids of inner indices."""
        return self.raw[np.asarray(inner)]

    def __contains__(self, raw_id) -> bool:
        return bool(self.to_inner([raw_id], missing="mask")[0] >= 0)
