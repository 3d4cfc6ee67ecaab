"""recforge: recommender systems from the classics to deep learning."""

from ._version import __version__
from .data import DataError, Dataset, IdMap, Interactions, ItemFeatures, SessionEvents

__all__ = ["__version__", "Dataset", "DataError", "IdMap", "Interactions", "ItemFeatures", "SessionEvents"]
