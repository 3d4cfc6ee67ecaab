"""The HTTP service: a FastAPI app over :class:`~recforge.serving.service.Service`.

``create_app(settings)`` builds one app (tests call it directly); :func:`app_from_env` builds
it in a worker process from the settings that ``recforge serve`` puts in the environment.
Reads are open; writes (events, clicks, model versions) need ``Authorization: Bearer TOKEN``
with a token from the token file (compared with :func:`hmac.compare_digest`; never logged).
OpenAPI docs are at ``/docs``.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import os
import time
from importlib import resources
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from .._version import __version__
from .config import Settings, read_tokens
from .metrics import CONTENT_TYPE_LATEST, Metrics
from .schemas import ClickIn, EventsIn, OnboardingIn, QueryIn, RegisterIn
from .service import Service, ServiceError
from .store import Event, StoreError, open_store
from .updates import Updater
from .versions import ModelVersions, VersionError

logger = logging.getLogger(__name__)

SETTINGS_ENV = "RECFORGE_SERVE_SETTINGS"

#: The demo web page served at ``/`` (package data).
PAGE = resources.files("recforge.serving").joinpath("static", "index.html")


def _id_path():
    """A raw id in the URL (a fresh parameter object per route)."""
    return Path(min_length=1, max_length=256)


#: ``Authorization: Bearer TOKEN`` (declared in the OpenAPI schema as the writes' security).
BearerCredentials = Annotated[
    HTTPAuthorizationCredentials | None,
    Depends(HTTPBearer(auto_error=False, description="a token from the service's token file"))]

#: Item ids in a query string: repeat the parameter or separate ids with commas.
IdList = Annotated[list[str] | None, Query(description="item ids (repeat or comma-separate)")]


def _split_ids(values: list[str] | None) -> list[str] | None:
    """Repeated query parameters, each possibly comma-separated, as one list."""
    if values is None:
        return None
    return [v for value in values for v in value.split(",") if v != ""]


class _Guard:
    """ASGI middleware: request body size limit and latency metrics by route template."""

    def __init__(self, app, max_body: int, metrics: Metrics):
        self.app = app
        self.max_body = max_body
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        status = {"code": 500}
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        too_big = False
        if length is not None:
            try:
                too_big = int(length) > self.max_body
            except ValueError:
                too_big = True
        if too_big:
            await _send_json(send, 413, {"detail": f"request body larger than {self.max_body} bytes",
                                         "field": "body"})
            status["code"] = 413
        else:
            seen = {"n": 0}

            async def limited_receive():
                message = await receive()
                if message["type"] == "http.request":
                    seen["n"] += len(message.get("body", b""))
                    if seen["n"] > self.max_body:
                        raise HTTPException(413, f"request body larger than {self.max_body} bytes")
                return message

            async def recording_send(message):
                if message["type"] == "http.response.start":
                    status["code"] = message["status"]
                await send(message)

            await self.app(scope, limited_receive, recording_send)
        route = scope.get("route")
        endpoint = getattr(route, "path", None) or "unmatched"
        self.metrics.latency.labels(endpoint=endpoint, method=scope.get("method", ""),
                                    status=str(status["code"])).observe(time.perf_counter() - start)


class ErrorResponse(JSONResponse):
    """An error body as ASCII JSON: an input echoed back in it (a field name, a dict key) may
    hold text that is not valid UTF-8, which must not turn a 4xx into a 500."""

    def render(self, content) -> bytes:
        import json

        return json.dumps(content, ensure_ascii=True, allow_nan=False,
                          separators=(",", ":")).encode("ascii")


async def _send_json(send, status: int, body: dict) -> None:
    import json

    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})


def create_app(settings: Settings) -> FastAPI:
    """The service app. With ``settings.model_dir`` that directory is registered and promoted
    at once (an unusable one raises :class:`VersionError` naming the file)."""
    store = open_store(settings.store)
    versions = ModelVersions(settings.models_root, store, settings.rules,
                             refresh_seconds=settings.refresh_seconds, ann=settings.ann)
    if settings.model_dir is not None:
        rec = versions.register(settings.model_dir)
        versions.promote(rec.version)
    else:  # a worker: load the live version (and build its index) before taking requests
        versions.live()
    tokens = read_tokens(settings.token_file) if settings.token_file else []
    metrics = Metrics()
    service = Service(settings, store, versions, metrics)
    updater = Updater(versions, store, settings.updates, settings.rules, metrics, ann=settings.ann)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        updater.stop()

    app = FastAPI(title="recforge", version=__version__, lifespan=lifespan,
                  description="Recommendations, similar items, session next items and events "
                              "from a recforge model.")
    app.state.service = service
    app.state.updater = updater
    app.state.store = store
    app.state.versions = versions
    app.state.metrics = metrics
    app.add_middleware(_Guard, max_body=settings.limits.max_body_bytes, metrics=metrics)

    def require_token(credentials: BearerCredentials) -> None:
        given = credentials.credentials if credentials is not None else ""
        ok = False
        if given:
            for token in tokens:  # compare with every token: no early exit to time
                ok |= hmac.compare_digest(given.encode(), token.encode())
        if not ok:
            detail = ("writes need 'Authorization: Bearer <token>'" if tokens else
                      "writes are disabled: the service was started without a token file")
            raise HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError):
        return ErrorResponse({"detail": str(exc), "field": exc.field}, status_code=exc.status)

    @app.exception_handler(VersionError)
    async def _version_error(request: Request, exc: VersionError):
        return ErrorResponse({"detail": str(exc), "field": None}, status_code=exc.status)

    @app.exception_handler(StoreError)
    async def _store_error(request: Request, exc: StoreError):
        logger.error("%s %s: %s", request.method, request.url.path, exc)
        return ErrorResponse({"detail": str(exc), "field": None, "error": "store unavailable"},
                             status_code=503, headers={"Retry-After": "30"})

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        return ErrorResponse({"detail": exc.detail, "field": None}, status_code=exc.status_code,
                             headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        errors = jsonable_encoder([{k: v for k, v in e.items() if k != "input"}  # not echoed
                                   for e in exc.errors()], custom_encoder={Exception: str})
        first = errors[0] if errors else {}
        # the path to the field, without pydantic's union-branch tags ("list[union[...]]")
        field = ".".join(str(p) for p in first.get("loc", ())
                         if not (isinstance(p, str) and ("[" in p or p.startswith(
                             ("constrained-", "function-")))))
        msg = first.get("msg", "invalid request")
        return ErrorResponse({"detail": f"{field}: {msg}", "field": field, "errors": errors},
                             status_code=422)

    # ------------------------------------------------------------------ the web page
    @app.get("/", include_in_schema=False)
    def page():
        """A demo page (``static/index.html``): a user's or an anonymous session's history,
        recommendations and similar items; clicking an item adds it (with the write token)."""
        return HTMLResponse(PAGE.read_text(encoding="utf-8"))

    # ------------------------------------------------------------------ probes
    @app.get("/health", tags=["probes"])
    def health():
        """The process is up."""
        return {"status": "ok"}

    @app.get("/ready", tags=["probes"])
    def ready():
        """A model version is live and the store answers."""
        lv = versions.live()
        if lv is None or not store.ping():
            return JSONResponse({"status": "not ready",
                                 "model_version": None if lv is None else lv.version},
                                status_code=503)
        return {"status": "ready", "model_version": lv.version, "model": lv.model.name}

    @app.get("/metrics", tags=["probes"])
    def prometheus_metrics():
        lv = versions.live()
        metrics.model_version.set(0 if lv is None else lv.version)
        metrics.revision.set(0 if lv is None else lv.revision)
        metrics.events_in_store.set(store.count_events())
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    # ------------------------------------------------------------------ recommendations
    # The read endpoints below are ``async``: their work is about a millisecond of CPU (an index
    # search, a few small array operations, one indexed SQLite read), so they run on the event
    # loop itself instead of paying, per request, a hop to the thread pool and back (a queue, a
    # condition variable and a wake-up of the loop). Writes, promotions and everything that can
    # take long stay ``def`` (thread pool).
    @app.get("/users/{user}/recommendations", tags=["recommendations"])
    async def user_recommendations(user: str = _id_path(), k: int = Query(10, ge=1),
                             exclude: IdList = None, candidates: IdList = None):
        """Top-k for a user: the model's training history of the user plus their stored events.
        An unknown user gets the cold-start fallback, named in ``fallback``."""
        return service.recommend_user(user, k, _split_ids(exclude), _split_ids(candidates))

    @app.post("/recommendations", tags=["recommendations"])
    async def anonymous_recommendations(query: QueryIn):
        """Top-k for an anonymous history (item ids, or ``{item: value}``)."""
        history = query.history
        if isinstance(history, dict):
            history = list(history.items())
        return service.recommend_history(history, query.k, query.exclude, query.candidates,
                                         query.exclude_seen)

    @app.get("/items/{item}/similar", tags=["recommendations"])
    async def similar_items(item: str = _id_path(), k: int = Query(10, ge=1)):
        """Similar items; a new item (in the catalogue, unknown to the model) gets the
        content similarity of the bundle's item features, named in ``fallback``."""
        return service.similar(item, k)

    @app.get("/onboarding", tags=["recommendations"])
    def onboarding_items(n: int = Query(12, ge=1)):
        """Items to offer someone without history to pick from (the cold-start list)."""
        return service.onboarding_items(n)

    @app.post("/onboarding", tags=["recommendations"], dependencies=[Depends(require_token)])
    def onboarding(body: OnboardingIn):
        """A list from a few picked items, with any model; with ``user`` the picks are stored
        as that user's events first."""
        return service.onboard(body.items, body.k,
                               user=None if body.user is None else str(body.user))

    @app.get("/impressions", tags=["events"], dependencies=[Depends(require_token)],
             response_class=Response,
             responses={200: {"content": {"application/x-ndjson": {}},
                              "description": "one JSON object per shown slot"}})
    def export_impressions(after: int = Query(0, ge=0, le=2**63 - 1),
                           limit: int = Query(10000, ge=1, le=1000000)):
        """The log of shown lists as JSON lines, one per slot (list_id, position, item,
        exploratory, propensity, ...), after row ``after``: page with the last ``id``."""
        import json

        rows = store.impressions(after_id=after, limit=limit)
        text = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in rows)
        return Response(text, media_type="application/x-ndjson")

    @app.post("/sessions/{session_id}/events", tags=["sessions"],
              dependencies=[Depends(require_token)])
    def session_event(click: ClickIn, session_id: str = _id_path()):
        """Store a click in the session and return the session's next items."""
        return service.session_click(
            session_id, str(click.item), click.k, value=click.value, timestamp=click.timestamp,
            user=None if click.user is None else str(click.user), exclude=click.exclude,
            candidates=click.candidates, exclude_seen=click.exclude_seen)

    # ------------------------------------------------------------------ events
    @app.post("/events", tags=["events"], dependencies=[Depends(require_token)])
    def post_events(body: EventsIn):
        """Store events durably (committed before the reply); a user's next list reflects them."""
        now = time.time()
        events = [Event(item=str(e.item), user=None if e.user is None else str(e.user),
                        session=None if e.session is None else str(e.session),
                        value=float(e.value),
                        timestamp=now if e.timestamp is None else float(e.timestamp))
                  for e in body.events]
        return service.add_events(events)

    @app.get("/users/{user}/history", tags=["events"])
    def user_history(user: str = _id_path(), limit: int = Query(100, ge=1, le=10000)):
        return service.user_history(user, limit)

    # ------------------------------------------------------------------ model versions
    def _record(rec, live: int | None) -> dict:
        out = {"version": rec.version, "path": rec.path, "model": rec.model,
               "status": rec.status, "message": rec.message, "created": rec.created,
               "live": rec.version == live, "index": store.index_info(rec.version)}
        lv = versions.live()
        if lv is not None and lv.version == rec.version:  # this process's in-memory revision
            out["revision"] = lv.revision
            out["updates"] = {**updater.status(), "latest": lv.updated or None}
        return out

    @app.get("/models", tags=["models"])
    def list_models():
        live = store.live_version()
        return {"live": live, "versions": [_record(r, live) for r in store.versions()]}

    @app.post("/models", tags=["models"], status_code=201, dependencies=[Depends(require_token)])
    def register_model(body: RegisterIn):
        """Register a saved model directory inside the models root; it is loaded, verified
        and warmed up first (a failure is recorded as rejected and answered with 422)."""
        rec = versions.register(body.path, index=body.index)
        if body.promote:
            versions.promote(rec.version)
        return _record(rec, store.live_version())

    @app.post("/models/rollback", tags=["models"], dependencies=[Depends(require_token)])
    def rollback():
        lv = versions.rollback()
        return {"live": lv.version, "model": lv.model.name}

    @app.post("/models/{version}/promote", tags=["models"], dependencies=[Depends(require_token)])
    def promote(version: int = Path(ge=1, le=2**63 - 1)):
        lv = versions.promote(version)
        return {"live": lv.version, "model": lv.model.name}

    updater.start()
    return app


def app_from_env() -> FastAPI:
    """The app of one worker process, from the settings ``recforge serve`` exported."""
    text = os.environ.get(SETTINGS_ENV)
    if not text:
        raise RuntimeError(f"{SETTINGS_ENV} is not set; start the service with `recforge serve`")
    return create_app(Settings.from_json(text))
