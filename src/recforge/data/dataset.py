"""A loaded dataset: interactions, with item features and sessions beside them."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from .errors import DropReport
from .features import ItemFeatures, UserFeatures
from .interactions import Interactions
from .sessions import SessionEvents


@dataclass
class Dataset:
    """What a reader returns: the interactions and whatever else the source has.

    Attributes
    ----------
    name : str
    interactions : Interactions, optional
        User x item data (absent for purely anonymous session logs).
    item_features : ItemFeatures, optional
        Aligned to ``interactions.item_map`` (or ``sessions.item_map``).
    user_features : DataFrame, optional
        One row per raw user id (index), as given by the source.
    sessions : SessionEvents, optional
        Session logs (train part for pre-split sources).
    parts : dict[str, SessionEvents | Interactions]
        Pre-split parts shipped by the source (e.g. ``train_full``, ``test``).
    drops : DropReport
        Everything dropped or merged while reading, by reason.
    source : str, optional
        The file or directory read.
    """

    name: str
    interactions: Interactions | None = None
    item_features: ItemFeatures | None = None
    user_features: pd.DataFrame | None = None
    sessions: SessionEvents | None = None
    parts: dict = field(default_factory=dict)
    drops: DropReport = field(default_factory=DropReport)
    source: str | None = None

    def aligned_user_features(self, **kwargs) -> UserFeatures | None:
        """``user_features`` aligned to ``interactions.user_map`` (None without either); keyword
        arguments go to :meth:`UserFeatures.from_dataframe` (e.g. ``categorical=[...]``)."""
        if self.user_features is None or self.interactions is None:
            return None
        return UserFeatures.from_dataframe(self.user_features, self.interactions.user_map, **kwargs)

    def summary(self) -> dict:
        out: dict = {"name": self.name, "source": self.source}
        if self.interactions is not None:
            out["interactions"] = self.interactions.summary()
        if self.sessions is not None:
            out["sessions"] = self.sessions.summary()
        for k, part in self.parts.items():
            out.setdefault("parts", {})[k] = part.summary()
        if self.item_features is not None:
            out["item_features"] = self.item_features.summary()
        if self.user_features is not None:
            out["user_features"] = {"users": len(self.user_features), "columns": list(self.user_features.columns)}
        if self.drops or self.drops.notes:
            out["dropped"] = self.drops.to_dict()
        return out
