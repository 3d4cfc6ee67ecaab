"""Prometheus metrics of one service process (``GET /metrics``).

* ``recforge_request_seconds{endpoint, method, status}`` — request latency histogram, labelled
  by the route template (``/users/{user}/recommendations``), never by raw ids;
* ``recforge_fallbacks_total{kind}`` — fallbacks by reason, as the model names them;
* ``recforge_model_version`` — the live version number (``0`` before one is live);
* ``recforge_events_stored_total`` — events written to the store by this process;
* ``recforge_events_in_store`` — events in the store when scraped;
* ``recforge_list_log_failures_total`` — shown lists served but not logged (store unavailable);
* ``recforge_exploratory_slots_total`` — slots given to exploration;
* ``recforge_model_revision`` — in-memory revision of the live version (background updates);
* ``recforge_model_updates_total{outcome}`` — background ``partial_fit`` updates by outcome
  (``applied``, ``failed``, ``discarded``: the live version changed meanwhile).

Each app has its own registry, so several apps (tests) live in one process. With several worker
processes each worker reports its own counters.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,  # noqa: F401  (re-exported for the app)
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        self.latency = Histogram("recforge_request_seconds", "Request latency by endpoint",
                                 ["endpoint", "method", "status"], buckets=_BUCKETS,
                                 registry=self.registry)
        self.fallbacks = Counter("recforge_fallbacks", "Fallbacks by kind", ["kind"],
                                 registry=self.registry)
        self.model_version = Gauge("recforge_model_version", "Live model version",
                                   registry=self.registry)
        self.events = Counter("recforge_events_stored", "Events stored by this process",
                              registry=self.registry)
        self.events_in_store = Gauge("recforge_events_in_store", "Events in the store",
                                     registry=self.registry)
        self.log_failures = Counter("recforge_list_log_failures", "Shown lists not logged",
                                    registry=self.registry)
        self.exploratory = Counter("recforge_exploratory_slots", "Slots given to exploration",
                                   registry=self.registry)
        self.revision = Gauge("recforge_model_revision", "In-memory revision of the live version",
                              registry=self.registry)
        self.updates = Counter("recforge_model_updates", "Background partial_fit updates",
                               ["outcome"], registry=self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)
