"""FeatureSpec: how each feature column becomes model input, built from the training data.

Feature models (factorization machines, Wide & Deep, DeepFM, DCN-v2, ...) see a row — one user,
one item, one interaction's context — as a list of *fields*; each field is one column of one
source, encoded one way:

``id``
    the user or item itself: inner index + 1 (index 0 is the out-of-vocabulary row, used for an
    id never seen in training);
``embedding``
    a single categorical value (gender, occupation, hour of day): vocabulary built from the
    training data, unseen values go to row 0 (OOV);
``multi_hot``
    a multi-valued categorical column (genres, tags): up to ``width`` values, pooled by mean
    (values ``1/n``) or sum;
``bucket``
    a numeric column cut at quantiles of its training values (age, year, recency): row 0 for a
    missing value, rows ``1 .. len(boundaries) + 1`` for the buckets;
``numeric``
    a numeric column standardised with its training mean and standard deviation: one row whose
    embedding is scaled by the value (0 when missing — the training mean);
``text``
    lower-cased word tokens of a text column (titles), vocabulary of the most frequent training
    tokens, pooled like ``multi_hot``.

Every field owns a contiguous block of rows of one shared embedding table (``offset`` ..
``offset + size - 1``), so an encoded row is a fixed-width pair of arrays ``(idx, val)``:
global row indices and their values (1 for a one-hot value, ``1/n`` for a mean-pooled bag, the
standardised value for a numeric field, 0 for an unused slot). That is exactly the sparse
feature vector :math:`x` of a factorization machine (Rendle 2010), and summing a field's slots
gives its field embedding for DeepFM, Wide & Deep and DCN-v2.

A value that cannot be encoded is never an error: an unseen category (or an id never seen in
training) uses the field's out-of-vocabulary row, a missing value its missing row (the same
row 0), and every :meth:`FeatureSpec.encode` call returns how often that happened per field
(:class:`Encoded` ``oov`` and ``missing``). The spec is plain JSON (:meth:`FeatureSpec.to_dict`)
and is saved with the models that use it; nothing is pickled.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .features import ItemFeatures, UserFeatures, as_category_strings

logger = logging.getLogger(__name__)

KINDS = ("id", "embedding", "multi_hot", "bucket", "numeric", "text")
SOURCES = ("user", "item", "context")
SPEC_FORMAT = "recforge-feature-spec"
SPEC_VERSION = 1

_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)


@dataclass
class FieldSpec:
    """How one column of one source is encoded (see the module docstring for the kinds).

    Attributes
    ----------
    name : str
        ``user_id``, ``item_id`` or ``<source>.<column>`` (e.g. ``user.age``).
    source : {'user', 'item', 'context'}
    column : str
        The column of the source table (``'id'`` for id fields).
    kind : {'id', 'embedding', 'multi_hot', 'bucket', 'numeric', 'text'}
    vocab : list of str, optional
        Values of ``embedding``, ``multi_hot`` and ``text`` fields (row ``j + 1`` is
        ``vocab[j]``).
    n_ids : int
        Size of the id map (``id`` fields).
    unseen_ids : list of int
        Inner ids without training interactions (``id`` fields): they use the OOV row.
    boundaries : list of float
        Bucket edges (``bucket`` fields): value ``x`` goes to row
        ``1 + #{b : b <= x}``.
    mean, std : float
        Standardisation of ``numeric`` fields.
    width : int
        Slots in an encoded row (values kept per row for ``multi_hot`` / ``text``; 1 otherwise).
    pooling : {'mean', 'sum'}
        Values of a bag's slots: ``1/n`` (mean) or 1 (sum).
    sep : str, optional
        Separator of multi-valued cells given as text (``'Action|Comedy'``).
    offset : int
        First row of the field in the shared embedding table (set by :class:`FeatureSpec`).
    """

    name: str
    source: str
    column: str
    kind: str
    vocab: list | None = None
    n_ids: int = 0
    unseen_ids: list = field(default_factory=list)
    boundaries: list | None = None
    mean: float = 0.0
    std: float = 1.0
    width: int = 1
    pooling: str = "mean"
    sep: str | None = None
    offset: int = 0

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"field {self.name!r}: kind must be one of {KINDS}, got {self.kind!r}")
        if self.source not in SOURCES:
            raise ValueError(f"field {self.name!r}: source must be one of {SOURCES}, got {self.source!r}")
        if self.pooling not in ("mean", "sum"):
            raise ValueError(f"field {self.name!r}: pooling must be 'mean' or 'sum', got {self.pooling!r}")
        if int(self.width) < 1:
            raise ValueError(f"field {self.name!r}: width must be >= 1, got {self.width!r}")

    @property
    def size(self) -> int:
        """Rows of the embedding table this field owns (row 0: out of vocabulary / missing)."""
        if self.kind == "id":
            return int(self.n_ids) + 1
        if self.kind in ("embedding", "multi_hot", "text"):
            return len(self.vocab or []) + 1
        if self.kind == "bucket":
            return len(self.boundaries or []) + 2
        return 1  # numeric


@dataclass
class Encoded:
    """Encoded rows of one source: ``idx`` (n, width) int64 global rows of the embedding table,
    ``val`` (n, width) float32 their values (0 in unused slots); ``oov`` and ``missing`` count,
    per field, the values that went to the out-of-vocabulary row (unseen category or id) and the
    missing values."""

    idx: np.ndarray
    val: np.ndarray
    oov: dict = field(default_factory=dict)
    missing: dict = field(default_factory=dict)
    truncated: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return self.idx.shape[0]

    def take(self, rows) -> Encoded:
        """The encoded rows at ``rows`` (counts are not split)."""
        return Encoded(self.idx[rows], self.val[rows], dict(self.oov), dict(self.missing),
                       dict(self.truncated))


# ---------------------------------------------------------------------- column access
def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens (letters and digits) of ``text``, each once, in order of first
    appearance."""
    seen: dict[str, None] = {}
    for tok in _TOKEN.findall(str(text).lower()):
        seen.setdefault(tok, None)
    return list(seen)


def _bags_to_csr(bags: list[list[str]]) -> tuple[sp.csr_matrix, list[str]]:
    """Per-row value lists -> (rows x local vocab) CSR whose stored column order per row is the
    order of the list, with the local vocabulary."""
    vocab: dict[str, int] = {}
    indices = np.fromiter((vocab.setdefault(v, len(vocab)) for bag in bags for v in bag), dtype=np.int64)
    indptr = np.zeros(len(bags) + 1, dtype=np.int64)
    np.cumsum([len(b) for b in bags], out=indptr[1:])
    m = sp.csr_matrix((np.ones(indices.size, np.float32), indices, indptr),
                      shape=(len(bags), max(len(vocab), 1)))
    return m, list(vocab)


def _as_bags(values, sep: str | None, text: bool) -> tuple[sp.csr_matrix, list[str]]:
    """A multi-valued column given as CSR + vocabulary, lists of values, or text cells."""
    if isinstance(values, tuple) and len(values) == 2 and sp.issparse(values[0]):
        return sp.csr_matrix(values[0]), list(values[1])
    bags = []
    for cell in values:
        if cell is None or (isinstance(cell, float) and np.isnan(cell)):
            bags.append([])
        elif isinstance(cell, str):
            if text:
                bags.append(tokenize(cell))
            else:
                parts = cell.split(sep) if sep else [cell]
                bags.append(list(dict.fromkeys(p.strip() for p in parts if p.strip())))
        else:
            bags.append(list(dict.fromkeys(str(v) for v in cell)))
    return _bags_to_csr(bags)


def item_columns(features: ItemFeatures | None) -> dict:
    """The columns of :class:`ItemFeatures` as a FeatureSpec source table: multi-valued
    categories as ``(csr, vocab)``, 1-d numeric features, text and ``title``."""
    if features is None:
        return {}
    out: dict = {}
    for name, (matrix, vocab) in features.categorical.items():
        out[name] = (matrix, vocab)
    for name, values in features.numeric.items():
        if np.ndim(values) == 1:
            out[name] = values
    for name, values in features.text.items():
        out[name] = values
    if features.titles is not None:
        out["title"] = features.titles
    return out


def user_columns(features: UserFeatures | None) -> dict:
    """The columns of :class:`UserFeatures` as a FeatureSpec source table."""
    if features is None:
        return {}
    return {**features.categorical, **features.numeric}


def _item_kind(features: ItemFeatures, name: str) -> str | None:
    if name in features.categorical:
        return "multi_hot"
    if name in features.text or name == "title":
        return "text"
    if name in features.numeric:
        return "bucket" if np.ndim(features.numeric[name]) == 1 else None
    return None


# ---------------------------------------------------------------------- the spec
class FeatureSpec:
    """The fields of a feature model, their encodings and their place in the embedding table.

    Build it from the training data with :meth:`build`; encode sources with :meth:`encode`
    (or :meth:`encode_users`, :meth:`encode_items`, :meth:`encode_context`); save it with
    :meth:`to_dict` / :meth:`save` and read it back with :meth:`from_dict` / :meth:`load`.

    Examples
    --------
    >>> from recforge.data import load                                   # doctest: +SKIP
    >>> ds = load("ml-100k")                                             # doctest: +SKIP
    >>> users = ds.aligned_user_features()                               # doctest: +SKIP
    >>> spec = FeatureSpec.build(ds.interactions, user_features=users,
    ...                          item_features=ds.item_features)         # doctest: +SKIP
    >>> [f.name for f in spec.fields][:4]                                # doctest: +SKIP
    ['user_id', 'user.age', 'user.gender', 'user.occupation']
    """

    def __init__(self, fields: list[FieldSpec]):
        names = [f.name for f in fields]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"feature spec: field names {dup} appear twice")
        # fields grouped by source (user, item, context), each group in the given order
        self.fields = sorted(fields, key=lambda f: SOURCES.index(f.source))
        offset = 0
        for f in self.fields:
            f.offset = offset
            offset += f.size
        self.n_features = offset

    # ---------------------------------------------------------------- layout
    def __repr__(self) -> str:
        return f"FeatureSpec({', '.join(f'{f.name}:{f.kind}' for f in self.fields)})"

    def __len__(self) -> int:
        return len(self.fields)

    def field(self, name: str) -> FieldSpec:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"feature spec has no field {name!r}; fields: {[f.name for f in self.fields]}")

    def source_fields(self, source: str) -> list[FieldSpec]:
        return [f for f in self.fields if f.source == source]

    def width(self, source: str) -> int:
        """Slots of an encoded row of ``source``."""
        return sum(f.width for f in self.source_fields(source))

    def slot_fields(self) -> np.ndarray:
        """Field number (position in :attr:`fields`) of every slot of a full row — the user,
        item and context rows concatenated — shape (sum of widths,)."""
        return np.repeat(np.arange(len(self.fields)), [f.width for f in self.fields])

    # ---------------------------------------------------------------- building
    @classmethod
    def build(cls, train, *, user_features: UserFeatures | None = None,
              item_features: ItemFeatures | None = None, context: Mapping | None = None,
              ids: bool = True, columns: Mapping[str, str | None] | None = None,
              n_buckets: int = 10, min_count: int = 1, max_tokens: int = 5000,
              text_width: int = 8, max_width: int = 16, pooling: str = "mean") -> FeatureSpec:
        """A spec for ``train`` (:class:`~recforge.data.Interactions`) and the given sources.

        Vocabularies, bucket edges and standardisation come from the training data only: the
        users and items with at least one training interaction, and the training interactions'
        context. Default encodings: ids -> ``id``; user categorical -> ``embedding``, user
        numeric -> ``bucket``; item categories -> ``multi_hot``, 1-d item numeric ->
        ``bucket``, item text and titles -> ``text``; context ``hour`` / ``weekday`` ->
        ``embedding``, other context columns -> ``bucket``.

        Parameters
        ----------
        train : Interactions
        user_features : UserFeatures, optional
            Aligned to ``train.user_map``.
        item_features : ItemFeatures, optional
            Aligned to ``train.item_map``.
        context : mapping of column -> array, optional
            One value per training interaction (:func:`~recforge.data.features.context_features`).
        ids : bool
            Include the ``user_id`` and ``item_id`` fields.
        columns : mapping of field name -> kind or None, optional
            Overrides: another kind for a field (``{"user.age": "numeric"}``), or None to leave
            it out (``{"item.title": None}``).
        n_buckets : int
            Quantile buckets of ``bucket`` fields.
        min_count : int
            A category enters the vocabulary when at least this many training users / items /
            interactions have it; rarer ones are out of vocabulary.
        max_tokens : int
            Largest text vocabulary (most frequent tokens first).
        text_width, max_width : int
            Slots of a text field; most slots of a multi-hot field (its largest training row,
            capped at ``max_width``).
        pooling : {'mean', 'sum'}
            Pooling of multi-valued fields.
        """
        if int(n_buckets) < 1:
            raise ValueError(f"n_buckets must be >= 1, got {n_buckets!r}")
        if int(min_count) < 1:
            raise ValueError(f"min_count must be >= 1, got {min_count!r}")
        if user_features is not None and len(user_features.user_map) != train.n_users:
            raise ValueError("user_features must be aligned to train.user_map "
                             "(use UserFeatures.from_dataframe(df, train.user_map))")
        if item_features is not None and item_features.n_items != train.n_items:
            raise ValueError("item_features must be aligned to train.item_map")
        columns = dict(columns or {})
        known = []
        fields: list[FieldSpec] = []
        user_rows = np.flatnonzero(train.user_counts > 0)
        item_rows = np.flatnonzero(train.item_counts > 0)
        opts = dict(n_buckets=int(n_buckets), min_count=int(min_count), max_tokens=int(max_tokens),
                    text_width=int(text_width), max_width=int(max_width), pooling=pooling)

        def add(name, source, column, default_kind, values, rows):
            known.append(name)
            kind = columns.get(name, default_kind)
            if kind is None:
                return
            fields.append(_fit_field(name, source, column, kind, values, rows, **opts))

        if ids:
            for source, n, rows in (("user", train.n_users, user_rows), ("item", train.n_items, item_rows)):
                name = f"{source}_id"
                known.append(name)
                if columns.get(name, "id") is None:
                    continue
                seen = np.zeros(n, bool)
                seen[rows] = True
                fields.append(FieldSpec(name, source, "id", "id", n_ids=int(n),
                                        unseen_ids=np.flatnonzero(~seen).tolist()))
        if user_features is not None:
            for name in user_features.categorical:
                add(f"user.{name}", "user", name, "embedding", user_features.categorical[name], user_rows)
            for name in user_features.numeric:
                add(f"user.{name}", "user", name, "bucket", user_features.numeric[name], user_rows)
        if item_features is not None:
            cols = item_columns(item_features)
            for name, values in cols.items():
                kind = _item_kind(item_features, name)
                if kind is not None:
                    add(f"item.{name}", "item", name, kind, values, item_rows)
        if context is not None:
            all_rows = np.arange(len(train))
            for name, values in context.items():
                values = np.asarray(values)
                if values.shape[0] != len(train):
                    raise ValueError(f"context column {name!r} has {values.shape[0]} values for "
                                     f"{len(train)} training interactions")
                default = "embedding" if name in ("hour", "weekday") or values.dtype.kind not in "fiu" else "bucket"
                add(f"context.{name}", "context", name, default, values, all_rows)
        unknown = sorted(set(columns) - set(known))
        if unknown:
            raise ValueError(f"columns: no field(s) {unknown}; fields: {known}")
        return cls(fields)

    # ---------------------------------------------------------------- encoding
    def encode(self, source: str, table: Mapping | None = None, *, ids=None, n: int | None = None) -> Encoded:
        """Encode rows of ``source``.

        Parameters
        ----------
        source : {'user', 'item', 'context'}
        table : mapping of column -> values, optional
            The source's columns (a dict, a DataFrame, or :func:`user_columns` /
            :func:`item_columns` of aligned features); single-valued columns as 1-d arrays,
            multi-valued ones as ``(csr, vocab)``, lists of values or separated strings, text as
            strings. A column the spec needs but the table lacks is missing on every row.
        ids : array of int, optional
            Inner ids (``-1`` for unknown) of the rows, for the ``id`` field.
        n : int, optional
            Number of rows (when neither ``table`` nor ``ids`` gives it).

        Returns
        -------
        Encoded
            ``idx`` / ``val`` of shape (n, :meth:`width`) and the out-of-vocabulary and missing
            counts per field.
        """
        if source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
        table = {} if table is None else table
        if isinstance(table, pd.DataFrame):
            table = {c: table[c].to_numpy() for c in table.columns}
        if n is None:
            if ids is not None:
                n = len(ids)
            else:
                sizes = [_n_rows(v) for v in table.values()]
                n = sizes[0] if sizes else 0
        fields = self.source_fields(source)
        idx = np.zeros((n, sum(f.width for f in fields)), dtype=np.int64)
        val = np.zeros(idx.shape, dtype=np.float32)
        out = Encoded(idx, val)
        col = 0
        for f in fields:
            sl = slice(col, col + f.width)
            if f.kind == "id":
                values = None if ids is None else np.asarray(ids, dtype=np.int64)
            else:
                values = table.get(f.column)
            if values is not None and _n_rows(values) != n:
                raise ValueError(f"{source} column {f.column!r} has {_n_rows(values)} rows, expected {n}")
            codes, vals, oov, missing, truncated = _encode_field(f, values, n)
            idx[:, sl] = codes + f.offset
            val[:, sl] = vals
            out.oov[f.name], out.missing[f.name] = oov, missing
            if truncated:
                out.truncated[f.name] = truncated
            col += f.width
        return out

    def encode_users(self, features: UserFeatures | None = None, ids=None) -> Encoded:
        """Every user of the id map (or the inner ``ids``), with their aligned features."""
        n = len(features.user_map) if features is not None else None
        if ids is None:
            f = self.source_fields("user")
            n = n if n is not None else next((x.n_ids for x in f if x.kind == "id"), 0)
            ids = np.arange(n)
        table = user_columns(features)
        if features is not None and len(ids) != features.n_users:
            table = _take_table(table, np.asarray(ids))
        return self.encode("user", table, ids=ids)

    def encode_items(self, features: ItemFeatures | None = None, ids=None) -> Encoded:
        """Every item of the id map (or the inner ``ids``), with their aligned features."""
        if ids is None:
            n = features.n_items if features is not None else next(
                (x.n_ids for x in self.source_fields("item") if x.kind == "id"), 0)
            ids = np.arange(n)
        table = item_columns(features)
        if features is not None and len(ids) != features.n_items:
            table = _take_table(table, np.asarray(ids))
        return self.encode("item", table, ids=ids)

    def encode_context(self, context: Mapping | None, n: int) -> Encoded:
        """``n`` interactions' context (None: every context value missing)."""
        return self.encode("context", context or {}, n=n)

    # ---------------------------------------------------------------- persistence
    def to_dict(self) -> dict:
        """Plain JSON-able description (the fields, in order)."""
        return {"format": SPEC_FORMAT, "version": SPEC_VERSION,
                "fields": [{k: v for k, v in asdict(f).items() if k != "offset"} for f in self.fields]}

    @classmethod
    def from_dict(cls, data: Mapping) -> FeatureSpec:
        if data.get("format") != SPEC_FORMAT:
            raise ValueError(f"not a feature spec (format {data.get('format')!r})")
        if data.get("version") != SPEC_VERSION:
            raise ValueError(f"feature spec version {data.get('version')!r}; this recforge reads "
                             f"version {SPEC_VERSION}")
        return cls([FieldSpec(**f) for f in data["fields"]])

    def save(self, path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=1, sort_keys=True))
        return path

    @classmethod
    def load(cls, path) -> FeatureSpec:
        return cls.from_dict(json.loads(Path(path).read_text()))

    def __eq__(self, other) -> bool:
        return isinstance(other, FeatureSpec) and self.to_dict() == other.to_dict()


# ---------------------------------------------------------------------- helpers
def _n_rows(values) -> int:
    if isinstance(values, tuple) and len(values) == 2 and sp.issparse(values[0]):
        return values[0].shape[0]
    return len(values)


def _take_table(table: dict, rows: np.ndarray) -> dict:
    out = {}
    for k, v in table.items():
        if isinstance(v, tuple):
            out[k] = (sp.csr_matrix(v[0])[rows], v[1])
        else:
            out[k] = np.asarray(v)[rows]
    return out


def _fit_field(name, source, column, kind, values, rows, *, n_buckets, min_count, max_tokens,
               text_width, max_width, pooling) -> FieldSpec:
    """A field of ``kind`` fitted on the training rows ``rows`` of ``values``."""
    if kind == "id":
        raise ValueError(f"field {name!r}: kind 'id' is for user_id / item_id only")
    if kind in ("embedding",):
        if isinstance(values, tuple):
            raise ValueError(f"field {name!r} is multi-valued: use 'multi_hot'")
        cats = as_category_strings(np.asarray(values)[rows])
        counts = pd.Series(cats[cats != ""]).value_counts()
        vocab = sorted(counts.index[counts >= min_count].tolist())
        return FieldSpec(name, source, column, kind, vocab=vocab)
    if kind in ("multi_hot", "text"):
        matrix, local = _as_bags(values, "|", text=kind == "text")
        matrix = matrix[rows]
        df = np.bincount(matrix.indices, minlength=len(local)) if matrix.nnz else np.zeros(len(local), int)
        keep = np.flatnonzero(df >= min_count)
        if kind == "text":
            # most frequent first, ties by token, at most max_tokens
            keep = keep[np.lexsort((np.array(local, dtype=object)[keep].astype(str), -df[keep]))][:max_tokens]
            width = text_width
        else:
            lengths = np.diff(matrix.indptr)
            width = int(min(max(lengths.max(initial=1), 1), max_width))
        vocab = sorted(local[j] for j in keep)
        return FieldSpec(name, source, column, kind, vocab=vocab, width=int(width), pooling=pooling)
    if isinstance(values, tuple):
        raise ValueError(f"field {name!r} is multi-valued: use 'multi_hot'")
    x = pd.to_numeric(pd.Series(np.asarray(values)[rows]), errors="coerce").to_numpy(dtype=np.float64)
    x = x[np.isfinite(x)]
    if kind == "bucket":
        if x.size == 0:
            return FieldSpec(name, source, column, kind, boundaries=[])
        qs = np.quantile(x, np.linspace(0, 1, int(n_buckets) + 1)[1:-1])
        return FieldSpec(name, source, column, kind, boundaries=np.unique(qs).tolist())
    if kind == "numeric":
        mean = float(x.mean()) if x.size else 0.0
        std = float(x.std()) if x.size else 1.0
        return FieldSpec(name, source, column, kind, mean=mean, std=std if std > 0 else 1.0)
    raise ValueError(f"field {name!r}: unknown kind {kind!r}; kinds: {KINDS}")


def _encode_field(f: FieldSpec, values, n: int):
    """(codes (n, width) within the field, values (n, width), n_oov, n_missing, n_truncated)."""
    codes = np.zeros((n, f.width), dtype=np.int64)
    vals = np.zeros((n, f.width), dtype=np.float32)
    if f.kind == "id":
        if values is None:
            vals[:, 0] = 1.0
            return codes, vals, 0, n, 0
        ids = np.asarray(values, dtype=np.int64)
        ok = (ids >= 0) & (ids < f.n_ids)
        if f.unseen_ids:
            ok[ok] &= ~np.isin(ids[ok], np.asarray(f.unseen_ids, dtype=np.int64))
        codes[:, 0] = np.where(ok, ids + 1, 0)
        vals[:, 0] = 1.0
        return codes, vals, int((~ok).sum()), 0, 0
    if values is None:
        if f.kind in ("embedding", "bucket"):
            vals[:, 0] = 1.0
        return codes, vals, 0, n, 0
    if f.kind == "embedding":
        cats = as_category_strings(np.asarray(values))
        missing = cats == ""
        j = pd.Index(f.vocab or [], dtype=object).get_indexer(cats) + 1 if f.vocab else np.zeros(n, np.int64)
        j = np.where(missing, 0, j)
        codes[:, 0] = j
        vals[:, 0] = 1.0
        return codes, vals, int(((j == 0) & ~missing).sum()), int(missing.sum()), 0
    if f.kind == "bucket":
        x = pd.to_numeric(pd.Series(np.asarray(values)), errors="coerce").to_numpy(dtype=np.float64)
        missing = ~np.isfinite(x)
        b = 1 + np.searchsorted(np.asarray(f.boundaries or [], dtype=np.float64), np.where(missing, 0, x),
                                side="right")
        codes[:, 0] = np.where(missing, 0, b)
        vals[:, 0] = 1.0
        return codes, vals, 0, int(missing.sum()), 0
    if f.kind == "numeric":
        x = pd.to_numeric(pd.Series(np.asarray(values)), errors="coerce").to_numpy(dtype=np.float64)
        missing = ~np.isfinite(x)
        vals[:, 0] = np.where(missing, 0.0, (x - f.mean) / f.std)
        return codes, vals, 0, int(missing.sum()), 0
    # multi_hot / text
    matrix, local = _as_bags(values, f.sep or "|", text=f.kind == "text")
    matrix = sp.csr_matrix(matrix)
    lookup = pd.Index(f.vocab or [], dtype=object).get_indexer(np.asarray(local, dtype=object)) + 1 \
        if f.vocab else np.zeros(len(local), np.int64)
    lengths = np.diff(matrix.indptr)
    rows = np.repeat(np.arange(n), lengths)
    pos = np.arange(matrix.indices.size) - matrix.indptr[rows]
    code = lookup[matrix.indices] if matrix.indices.size else np.zeros(0, np.int64)
    kept = pos < f.width
    codes[rows[kept], pos[kept]] = code[kept]
    n_kept = np.minimum(lengths, f.width)
    if f.pooling == "mean":
        weight = np.where(n_kept > 0, 1.0 / np.maximum(n_kept, 1), 0.0)
        vals[rows[kept], pos[kept]] = weight[rows[kept]]
    else:
        vals[rows[kept], pos[kept]] = 1.0
    oov = int((code[kept] == 0).sum())
    missing = int((lengths == 0).sum())
    return codes, vals, oov, missing, int((~kept).sum())
