"""Session-based recommenders: next-item models trained on anonymous sessions.

The torch models (GRU4Rec, SASRec) are imported on first use, so that the non-neural baselines
can be used without importing torch.
"""

from .baselines import SKNN, VSKNN, ItemKNNSession, MarkovChain, SPop

__all__ = ["GRU4Rec", "SPop", "ItemKNNSession", "SKNN", "VSKNN", "MarkovChain", "SASRec"]

_TORCH_MODELS = {"GRU4Rec": ".gru4rec", "SASRec": ".sasrec"}


def __getattr__(name: str):
    if name in _TORCH_MODELS:
        import importlib

        return getattr(importlib.import_module(_TORCH_MODELS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
