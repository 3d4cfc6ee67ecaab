"""The recforge service: HTTP recommendations from a saved model, with a durable event store.

Layers: :mod:`~recforge.serving.store` (events, sessions and model versions on SQLite),
:mod:`~recforge.serving.bundle` (a saved model plus its training history and titles),
:mod:`~recforge.serving.versions` (register, check, promote, roll back),
:mod:`~recforge.serving.service` (the operations) and :mod:`~recforge.serving.app` (FastAPI).
Built on ``models`` and ``data`` only, never on ``evaluation``. Needs the ``serve`` extra
(fastapi, uvicorn, prometheus-client) for the app; the store and bundles need nothing more.
"""

from .bundle import Bundle, load_bundle, save_bundle
from .config import Limits, Rules, Settings
from .store import Event, SQLiteStore, Store

__all__ = ["Bundle", "Event", "Limits", "Rules", "SQLiteStore", "Settings", "Store", "load_bundle",
           "save_bundle"]
