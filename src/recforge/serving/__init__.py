"""The recforge service: HTTP recommendations from a saved model, with a durable event store.

Layers: :mod:`~recforge.serving.store` (events, sessions, model versions and shown lists on SQLite, or on
PostgreSQL in :mod:`~recforge.serving.postgres`),
:mod:`~recforge.serving.bundle` (a saved model plus its training history and titles),
:mod:`~recforge.serving.versions` (register, check, promote, roll back),
:mod:`~recforge.serving.service` (the operations) and :mod:`~recforge.serving.app` (FastAPI).
Built on ``models`` and ``data`` only, never on ``evaluation``. Needs the ``serve`` extra
(fastapi, uvicorn, prometheus-client) for the app; the store and bundles need nothing more.
"""

from .bundle import Bundle, load_bundle, save_bundle
from .config import Limits, Rules, Settings
from .store import Event, ShownList, SQLiteStore, Store, open_store

__all__ = ["Bundle", "Event", "Limits", "Rules", "SQLiteStore", "Settings", "ShownList", "Store",
           "load_bundle", "open_store", "save_bundle"]
