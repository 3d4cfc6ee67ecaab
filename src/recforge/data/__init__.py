"""Data layer: interactions, item features, sessions, readers, synthetic data, dataset cache."""

from .dataset import Dataset
from .errors import DataError, DropReport
from .feature_spec import Encoded, FeatureSpec, FieldSpec
from .features import ItemFeatures, UserFeatures, context_features
from .idmap import IdMap
from .interactions import Interactions
from .sessions import SessionEvents


def load(name_or_path=None, **kwargs) -> Dataset:
    """Load a dataset by catalog name, synthetic name, directory or file, or ``train=``/``test=``
    session files (see :func:`recforge.data.readers.load`)."""
    from .readers import load as _load

    return _load(name_or_path, **kwargs)

__all__ = ["load", "Dataset", "Encoded", "FeatureSpec", "FieldSpec", "UserFeatures", "context_features", "DataError", "DropReport", "IdMap", "Interactions", "ItemFeatures", "SessionEvents"]
