"""What a served model version is on disk: a saved model plus what the service needs beside it.

A *bundle* is a directory written by :meth:`Recommender.save` (``config.json`` with a sha256 of
each of its files, ``arrays.npz``, ...) to which :func:`save_bundle` adds, when available:

* ``history.parquet`` — the training interactions (``user, item, value[, timestamp]``, raw
  ids): the history the model was fitted on, which a loaded model no longer has. The service
  merges a user's stored events into it, so that what a user does shows in their next list;
* ``items.parquet`` — item titles (``item, title``), returned with recommendations; an item
  here that the model does not know is a *new item* of the catalogue;
* ``item_features.npz`` — item feature vectors (``items``: text ids, ``matrix``: float32 rows),
  for the similar items of new items (cosine; see :mod:`recforge.serving.rules`);
* ``serving.json`` — a sha256 of each of these files, verified on load like the model's own.

A plain saved model directory is a valid bundle too (no training history, no titles).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..data.interactions import Interactions
from ..models import load_model
from ..models.base import ModelFileError, Recommender
from .rules import ItemVectors

SERVING_FILE = "serving.json"


class TrainingHistory:
    """Training interactions indexed by raw user id (as text), each user's rows in time order."""

    def __init__(self, df: pd.DataFrame):
        df = df.reset_index(drop=True)
        keys = df["user"].astype(str).to_numpy()
        sort_cols = [keys] + ([df["timestamp"].to_numpy()] if "timestamp" in df.columns else [])
        order = np.lexsort(tuple(reversed(sort_cols))) if len(df) else np.arange(0)
        self.items = df["item"].to_numpy()[order]
        self.values = df["value"].to_numpy(dtype=np.float64)[order]
        self.timestamps = (df["timestamp"].to_numpy(dtype=np.float64)[order]
                           if "timestamp" in df.columns else None)
        users, starts = np.unique(keys[order], return_index=True)
        self._users = users  # sorted (np.unique): a user's row block by binary search
        self._starts = np.append(starts, len(df)).astype(np.int64)
        self.n_rows = len(df)

    def rows(self, user: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(items, values, timestamps) of ``user``'s training interactions; empty if none."""
        pos = self._position(user)
        if pos < 0:
            return self.items[:0], self.values[:0], None
        s, e = self._starts[pos], self._starts[pos + 1]
        return self.items[s:e], self.values[s:e], \
            None if self.timestamps is None else self.timestamps[s:e]

    def _position(self, user) -> int:
        key = str(user)
        pos = int(np.searchsorted(self._users, key))
        return pos if pos < self._users.size and self._users[pos] == key else -1

    def __contains__(self, user) -> bool:
        return self._position(user) >= 0


@dataclass
class Bundle:
    """A loaded, verified model version."""

    path: Path
    model: Recommender
    history: TrainingHistory | None
    titles: dict | None  # raw item id (text) -> title
    digest: str  # sha256 of config.json + serving.json: what the version is
    features: ItemVectors | None = None  # item feature vectors, when the bundle has them


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _write_atomic(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def feature_matrix(item_features) -> tuple[list[str], np.ndarray]:
    """``(text ids, float32 matrix)`` from item features given as an
    :class:`~recforge.data.ItemFeatures` (each categorical multi-hot and each numeric feature,
    standardised, becomes an L2-normalised block, so the cosine of two concatenations is the
    mean of the per-feature cosines; text features are not used), a DataFrame (an ``item``
    column and numeric columns), a ``{item: vector}`` dict or an ``(ids, matrix)`` pair."""
    from ..data.features import ItemFeatures
    from ..models.content import _l2_normalise, standardise

    if isinstance(item_features, ItemFeatures):
        blocks = []
        for m, _vocab in item_features.categorical.values():
            blocks.append(_l2_normalise(np.asarray(m.todense(), dtype=np.float64)))
        for name, values in item_features.numeric.items():
            v = np.asarray(values, dtype=np.float64)
            v = v[:, None] if v.ndim == 1 else v
            present = item_features.present.get(name, ~np.isnan(v).any(axis=1))
            blocks.append(_l2_normalise(np.nan_to_num(standardise(v, present))))
        if not blocks:
            raise ValueError("item_features: no categorical or numeric feature to compare")
        ids = [str(i) for i in item_features.item_map.raw.tolist()]
        return ids, np.hstack(blocks).astype(np.float32)
    if isinstance(item_features, pd.DataFrame):
        if "item" not in item_features.columns:
            raise ValueError("item_features: the DataFrame needs an 'item' column")
        cols = [c for c in item_features.columns if c != "item"]
        return (item_features["item"].astype(str).tolist(),
                item_features[cols].to_numpy(dtype=np.float32))
    if isinstance(item_features, dict):
        return [str(i) for i in item_features], np.array(list(item_features.values()),
                                                          dtype=np.float32)
    ids, matrix = item_features
    return [str(i) for i in ids], np.asarray(matrix, dtype=np.float32)


def save_bundle(model: Recommender, path, history: Interactions | None = None,
                titles: dict | None = None, item_features=None) -> Path:
    """Save ``model`` to ``path`` with its training ``history``, item ``titles`` and
    ``item_features`` (see :func:`feature_matrix` for the forms; the module docstring for the
    files). ``history`` defaults to the interactions the model was fitted on."""
    path = model.save(path)
    if history is None:
        history = getattr(model, "_train_history", None)
    files = {}
    if history is not None:
        df = history.to_dataframe(raw_ids=True).rename(columns={"rating": "value"})
        _write_atomic(path / "history.parquet", lambda p: df.to_parquet(p, index=False))
        files["history.parquet"] = _sha256(path / "history.parquet")
    if titles:
        tdf = pd.DataFrame({"item": [str(k) for k in titles], "title": [str(v) for v in titles.values()]})
        _write_atomic(path / "items.parquet", lambda p: tdf.to_parquet(p, index=False))
        files["items.parquet"] = _sha256(path / "items.parquet")
    if item_features is not None:
        ids, matrix = feature_matrix(item_features)
        ItemVectors(ids, matrix)  # checks the shapes
        target = path / "item_features.npz"

        def write_npz(p):
            with open(p, "wb") as f:
                np.savez(f, items=np.array(ids, dtype=str), matrix=matrix)

        _write_atomic(target, write_npz)
        files["item_features.npz"] = _sha256(target)
    _write_atomic(path / SERVING_FILE,
                  lambda p: p.write_text(json.dumps({"files": files}, indent=1, sort_keys=True)))
    return path


def titles_from_features(features) -> dict | None:
    """Raw item id (text) -> title from an :class:`ItemFeatures`, or None without titles."""
    if features is None or getattr(features, "titles", None) is None:
        return None
    raw = features.item_map.raw if hasattr(features, "item_map") else None
    if raw is None:
        return None
    return {str(i): str(t) for i, t in zip(raw.tolist(), features.titles.tolist(), strict=True) if t}


def load_bundle(path) -> Bundle:
    """Load and verify a bundle; raises :class:`ModelFileError` naming the file at fault."""
    path = Path(path)
    try:
        model = load_model(path)
    except ModelFileError:
        raise
    except Exception as exc:  # checksums matched but the state does not rebuild the model
        raise ModelFileError(f"{path / 'config.json'}: the model cannot be rebuilt from it "
                             f"({type(exc).__name__}: {exc})") from None
    digest = hashlib.sha256((path / "config.json").read_bytes())
    history = titles = features = None
    serving = path / SERVING_FILE
    if serving.exists():
        try:
            spec = json.loads(serving.read_text())
            files = dict(spec["files"])
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            raise ModelFileError(f"{serving}: not a valid serving manifest ({exc})") from None
        digest.update(serving.read_bytes())
        for name, sha in files.items():
            f = path / name
            if name not in ("history.parquet", "items.parquet", "item_features.npz"):
                raise ModelFileError(f"{serving}: unknown file {name!r} listed")
            if not f.is_file():
                raise ModelFileError(f"{f}: missing (listed in {SERVING_FILE})")
            if _sha256(f) != sha:
                raise ModelFileError(f"{f}: sha256 does not match {SERVING_FILE} (file corrupt "
                                     "or changed after saving)")
        try:
            if "history.parquet" in files:
                df = pd.read_parquet(path / "history.parquet")
                missing = {"user", "item", "value"} - set(df.columns)
                if missing:
                    raise ModelFileError(f"{path / 'history.parquet'}: columns missing: "
                                         f"{', '.join(sorted(missing))}")
                history = TrainingHistory(df)
            if "items.parquet" in files:
                tdf = pd.read_parquet(path / "items.parquet")
                titles = dict(zip(tdf["item"].astype(str), tdf["title"].astype(str), strict=True))
            if "item_features.npz" in files:
                with np.load(path / "item_features.npz", allow_pickle=False) as npz:
                    features = ItemVectors(npz["items"].tolist(), npz["matrix"])
        except ModelFileError:
            raise
        except Exception as exc:  # unreadable parquet despite a matching digest
            raise ModelFileError(f"{path}: serving files unreadable ({exc})") from None
    return Bundle(path, model, history, titles, digest.hexdigest(), features)
