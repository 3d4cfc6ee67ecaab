"""Session-based recommenders: next-item models trained on anonymous sessions."""

from .gru4rec import GRU4Rec

__all__ = ["GRU4Rec"]

try:  # the non-neural baselines and SASRec live beside GRU4Rec
    from .baselines import SKNN, VSKNN, ItemKNNSession, MarkovChain, SPop  # noqa: F401
    from .sasrec import SASRec  # noqa: F401
except ImportError:  # pragma: no cover - a partial checkout
    pass
else:
    __all__ += ["SPop", "ItemKNNSession", "SKNN", "VSKNN", "MarkovChain", "SASRec"]
