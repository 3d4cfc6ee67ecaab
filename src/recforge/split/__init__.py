"""Train / test splits of interaction and session data.

Every split returns a :class:`SplitResult` (parts, counts on each side, what was dropped and why,
and the configuration including the seed). Interaction splits keep the full data's id maps in
every part; the session split maps held-out parts onto the training part's item index.
"""

from ._result import SplitResult
from .random import holdout, kfold, leave_one_out
from .session import session_split
from .temporal import temporal_global, temporal_per_user

__all__ = ["SplitResult", "holdout", "kfold", "leave_one_out", "session_split", "temporal_global",
           "temporal_per_user"]
