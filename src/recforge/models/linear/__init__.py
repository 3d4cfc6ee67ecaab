"""Linear item-item models for implicit feedback: EASE and SLIM.

Both learn an item x item weight matrix :math:`B` and score a row :math:`x_u` (its implicit
feedback) by :math:`x_u B`, so every row with a history is scored from it, known user or not.
"""

from .ease import EASE
from .slim import SLIM

__all__ = ["EASE", "SLIM"]
