"""Imports every model family so that each registers its models by name."""

# One line per family module; keep alphabetical.
from . import baseline, content, neighborhood, surprise_wrapper  # noqa: F401
from .session import baselines, gru4rec, sasrec  # noqa: F401
