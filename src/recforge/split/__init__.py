"""Train / test splits of interaction and session data.

Every split returns a :class:`SplitResult` (parts, counts on each side, what was dropped and why,
and the configuration including the seed). Interaction splits keep the full data's id maps in
every part; the session split maps held-out parts onto the training part's item index.

Every split is registered by name (:func:`get_splitter`, :func:`available_splitters`), so
protocols and ``recforge bakeoff --split NAME`` can use any of them.
"""

from ._result import SplitResult
from .random import holdout, holdout_per_user, kfold, leave_one_out
from .registry import SPLITTERS, Splitter, available_splitters, get_splitter
from .session import session_split
from .temporal import temporal_global, temporal_per_user

__all__ = ["SPLITTERS", "SplitResult", "Splitter", "available_splitters", "get_splitter",
           "holdout", "holdout_per_user", "kfold", "leave_one_out", "session_split", "temporal_global",
           "temporal_per_user"]
