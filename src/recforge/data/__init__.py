"""Data layer: interactions, item features, sessions, readers, synthetic data, dataset cache."""

from .dataset import Dataset
from .errors import DataError, DropReport
from .features import ItemFeatures
from .idmap import IdMap
from .interactions import Interactions
from .sessions import SessionEvents

__all__ = ["Dataset", "DataError", "DropReport", "IdMap", "Interactions", "ItemFeatures", "SessionEvents"]
