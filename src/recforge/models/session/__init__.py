"""Session-based recommenders: next-item models trained on anonymous sessions.

The torch models (GRU4Rec, SASRec) are imported on first use, so that the non-neural session
baselines load without torch.
"""

import importlib

from .baselines import SKNN, VSKNN, ItemKNNSession, MarkovChain, SPop

_LAZY = {"GRU4Rec": ".gru4rec", "SASRec": ".sasrec"}

__all__ = ["GRU4Rec", "SASRec", "SPop", "ItemKNNSession", "SKNN", "VSKNN", "MarkovChain"]


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
