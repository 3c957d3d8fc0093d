"""The FastAPI application: SageMaker's ``/ping`` and ``/invocations``, plus
``/hotspots`` (GeoJSON), ``/boundaries``, ``/map``, ``/model`` and ``/model/card``.

Every bad request gets a 4xx whose ``detail`` names the problem; a request that
would outlast SageMaker's 60 s invocation limit gets a 503 first.

With a challenger, ``/hotspots`` and ``/invocations`` are answered by the variant
:class:`~crimecast.serving.variants.TrafficSplit` picks (``X-Crimecast-Variant`` says
which); with a forecast log, each answer is logged and the other model scores the same
request in shadow after the response is sent.
"""


import asyncio
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit

import numpy as np
from fastapi import FastAPI, Header, Query, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from crimecast import __version__
from crimecast.config import ServingConfig
from crimecast.errors import CrimecastError, ServingError
from crimecast.serving.forecast import Forecast, parse_at
from crimecast.serving.forecast_log import ForecastLog
from crimecast.serving.geojson import hotspots_geojson
from crimecast.serving.guard import AUTHENTICATED, VENDOR_PATH, Guard
from crimecast.serving.map_page import map_html
from crimecast.serving.payload import CSV, JSON, RowReader, choose_output, format_scores, media_type
from crimecast.serving.records import new_request_id, utc_now
from crimecast.serving.state import Loaded, ServerState, UnitView
from crimecast.serving.variants import (
    CHALLENGER,
    VARIANT_HEADER,
    Recorder,
    TrafficSplit,
    asked_variant,
    reads_champion_rows,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")
GEOJSON = "application/geo+json"
INLINE_BYTES = 16 * 1024  # score small bodies on the event loop: a thread hop costs more
_ROW_SCHEMA: dict[str, Any] = {"type": "object",
                               "additionalProperties": {"type": ["number", "null"]}}
INVOCATIONS_BODY: dict[str, Any] = {
    "requestBody": {"required": True, "content": {
        JSON: {"schema": {"oneOf": [
            {"type": "object", "properties": {"instances": {"type": "array",
                                                            "items": _ROW_SCHEMA}}},
            {"type": "array", "items": {"type": "array", "items": {"type": ["number",
                                                                            "null"]}}},
        ]}},
        CSV: {"schema": {"type": "string"}},
    }},
}


REQUEST_ID_HEADER = "X-Crimecast-Request-Id"
VariantOpt = Annotated[str | None, Header(
    alias=VARIANT_HEADER, description="champion or challenger: which model answers (default: "
                                      "the split of serving.challenger_share). SageMaker's "
                                      "X-Amzn-SageMaker-Target-Variant works too.")]


def identity_headers(audit: dict[str, Any]) -> dict[str, str]:
    """The model's version and run id as response headers; an unregistered model has no
    version, so it sends no version header (rather than the text "None")."""
    names = {"model_version": "X-Crimecast-Model-Version", "run_id": "X-Crimecast-Run-Id"}
    return {header: str(audit[key]) for key, header in names.items()
            if audit.get(key) is not None}


def vendor_dir() -> Path:
    """The packaged folder of vendored browser libraries."""
    return Path(str(resources.files("crimecast") / "resources" / "vendor"))


def from_map(request: Request) -> bool:
    """Whether a request comes from this server's map page (browsers send the page as the
    Referer, without its fragment): the map shows the champion."""
    referer = request.headers.get("referer")
    return referer is not None and urlsplit(referer).path == "/map"


def after(func: Callable[..., None], **kwargs: Any) -> BackgroundTask:
    """Run ``func(**kwargs)`` on the event loop once the response is sent (it only queues
    work for the recorder's thread, so no thread-pool hop)."""

    async def run() -> None:
        func(**kwargs)

    return BackgroundTask(run)


def create_app(config: ServingConfig, token: str | None = None,
               loader: Callable[[], Loaded] | None = None,
               loaded: Loaded | None = None, forecast_log: ForecastLog | None = None,
               split: TrafficSplit | None = None) -> Any:
    """Build the ASGI app. Pass ``loaded`` (ready now) or ``loader`` (run at start-up on a
    thread; ``/ping`` answers 503 until it finishes). With ``forecast_log`` every answer
    is logged (and a challenger scores in shadow); the app closes the log at shutdown.
    ``split`` defaults to ``serving.challenger_share`` and ``serving.challenger_seed``.
    The result is wrapped in :class:`~crimecast.serving.guard.Guard`; the FastAPI app is
    its ``.app``."""
    state = ServerState(config, forecast_log=forecast_log is not None)
    split = split or TrafficSplit(config.challenger_share, config.challenger_seed)
    recorder = Recorder(forecast_log) if forecast_log is not None else None
    if loaded is not None:
        state.install(loaded)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if loader is not None and not state.ready:
            state.load_in_background(loader)
        try:
            yield
        finally:  # log what was answered before the process ends
            if recorder is not None:
                await run_in_threadpool(recorder.close)
            if forecast_log is not None:
                await run_in_threadpool(forecast_log.close)

    app = FastAPI(title="crimecast", version=__version__, lifespan=lifespan,
                  description="Place-based crime hotspot forecasts (never about people). "
                              "SageMaker inference contract plus a GeoJSON hotspot API.",
                  docs_url=None, redoc_url=None)
    app.state.crimecast = state
    app.state.recorder = recorder
    # Browser libraries vendored from the npm registry (scripts/vendor_js.py): no CDN, so
    # /docs and /map work offline.
    app.mount(VENDOR_PATH, StaticFiles(directory=str(vendor_dir())), name="vendor")
    responses: OrderedDict[tuple[Any, ...], bytes] = OrderedDict()

    async def bounded(func: Callable[[], T]) -> T:
        try:
            return await asyncio.wait_for(run_in_threadpool(func), config.request_timeout_s)
        except TimeoutError:
            raise ServingError(f"the request took longer than {config.request_timeout_s:g} s "
                               "and was abandoned (SageMaker's limit is 60 s). Send fewer rows "
                               "or a shorter horizon.", status=503) from None

    def require_model() -> Loaded:
        if state.loaded is None:
            detail = (f"the model failed to load: {state.error}" if state.error
                      else "the model is still loading; retry in a few seconds.")
            raise ServingError(detail, status=503)
        return state.loaded

    def variants(request: Request, view: UnitView, rows: bool = False
                 ) -> tuple[UnitView, UnitView | None]:
        """The view that answers and the one that scores in shadow (None: no shadow, as
        without a log to record it). Only the primary unit has a challenger; the map is
        pinned to the champion; feature ``rows`` (``/invocations``) go to the champion
        alone when the challenger reads other features."""
        challenger = state.challenger if view.bundle is require_model().bundle else None
        asked = asked_variant(request.headers, challenger is not None)
        if rows and challenger is not None and not reads_champion_rows(view.bundle,
                                                                      challenger.bundle):
            if asked == CHALLENGER:
                raise ServingError("the challenger reads other features than the champion, "
                                   "so it cannot score /invocations rows (they come in the "
                                   "champion's feature order); got X-Crimecast-Variant: "
                                   "challenger. Ask /hotspots, or send X-Crimecast-Variant: "
                                   "champion.", status=409)
            challenger = None
        chosen = split.choose(asked, challenger is not None, pinned=from_map(request))
        if challenger is None:
            return view, None
        answering, other = (challenger, view) if chosen == CHALLENGER else (view, challenger)
        return answering, (other if recorder is not None else None)

    def answer_headers(view: UnitView, request_id: str | None) -> dict[str, str]:
        """The answering model's identity, its variant and (when logged) the request id."""
        headers = {**identity_headers(view.bundle.audit()), VARIANT_HEADER: view.role}
        if request_id is not None:
            headers[REQUEST_ID_HEADER] = request_id
        return headers

    def answered(body: bytes, media_type: str, view: UnitView, endpoint: str,
                 **details: Any) -> Response:
        """The answer with its model's headers; with a forecast log, recorded by the
        recorder's ``endpoint`` method (and shadow-scored) once it is sent."""
        if recorder is None:
            return Response(body, media_type=media_type, headers=answer_headers(view, None))
        request_id = new_request_id()
        return Response(body, media_type=media_type, headers=answer_headers(view, request_id),
                        background=after(getattr(recorder, endpoint), request_id=request_id,
                                         issued_at=utc_now(), served=view, **details))

    @app.exception_handler(ServingError)
    async def serving_error(_: Request, exc: ServingError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    @app.exception_handler(CrimecastError)
    async def crimecast_error(_: Request, exc: CrimecastError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.get("/ping", summary="Health check (SageMaker): 200 once a model is loaded")
    async def ping(request: Request) -> JSONResponse:
        # Open without a token (health checkers have none): an anonymous caller learns
        # only the status, never the model's identifiers or a load error's text.
        told = request.scope.get(AUTHENTICATED, True)
        if state.loaded is None:
            status = "failed" if state.error else "loading"
            body = {"status": status, "detail": state.error} if told else {"status": status}
            return JSONResponse(body, status_code=503)
        return JSONResponse({"status": "ok", **(state.loaded.bundle.audit() if told else {})})

    # HEAD /ping: the same status and headers, no body (uvicorn drops it). A route of its
    # own, so the OpenAPI operation ids stay unique.
    app.head("/ping", include_in_schema=False)(ping)

    @app.post("/invocations", summary="Score feature rows (SageMaker inference contract)",
              openapi_extra=INVOCATIONS_BODY, response_model=None)
    async def invocations(request: Request, variant: VariantOpt = None) -> Response:
        del variant  # declared for the API description; variants() reads the headers
        require_model()
        answering, shadow = variants(request, state.views[state.primary_unit or ""], rows=True)
        bundle = answering.bundle
        kind = choose_output(request.headers.get("accept"))
        ctype = media_type(request.headers.get("content-type"))
        if ctype not in (JSON, CSV):
            raise ServingError(f"Content-Type must be application/json or text/csv; got "
                               f"'{ctype or 'none'}'. Send Content-Type: text/csv.", status=415)
        body = await request.body()
        reader = RowReader(bundle.features, bundle.nullable, config.max_rows)
        audit = bundle.audit()

        def score() -> tuple[bytes, np.ndarray, np.ndarray]:
            matrix = reader.read_json(body) if ctype == JSON else reader.read_csv(body)
            scores = np.asarray(bundle.model.predict_proba(matrix))
            return format_scores(scores, bundle.threshold, kind, audit), scores, matrix

        # Parsing a big body costs more than scoring it: keep it off the event loop, so
        # one 1,000-row request does not stall the single-row requests behind it.
        answer, scores, matrix = score() if len(body) <= INLINE_BYTES else await bounded(score)
        return answered(answer, kind, answering, "invocations", scores=scores, matrix=matrix,
                        shadow=shadow)

    @app.get("/hotspots", summary="Top-ranked units for a forecast window, as GeoJSON",
             response_class=Response,
             responses={200: {"content": {GEOJSON: {}}, "description": "FeatureCollection"}})
    async def hotspots(
        request: Request,
        at: Annotated[str | None, Query(description="Local ISO time; default: now, or just "
                                                    "after the data store's last event")] = None,
        horizon: Annotated[str | None, Query(description="Window length: 1h, 8h, 1d, 7d",
                                             max_length=8)] = None,
        top: Annotated[int, Query(ge=1, le=config.max_top)] = 20,
        unit: Annotated[Literal["area", "district", "grid", "h3"] | None, Query()] = None,
        allow_stale: Annotated[bool, Query(description="Forecast a window that starts more "
                                                       "than serving.stale_after_days after "
                                                       "the last known event (else 409)")]
        = False,
        variant: VariantOpt = None,
    ) -> Response:
        require_model()
        view = state.views.get(unit or state.primary_unit or "")
        if view is None:
            raise ServingError(f"unit must be one of the served spatial units "
                               f"{sorted(state.views)}; got '{unit}'. Start the server with "
                               f"another --model trained with --spatial-unit {unit}.",
                               status=422)
        del variant  # declared for the API description; variants() reads the headers
        view, shadow = variants(request, view)
        bundle, forecaster = view.bundle, view.forecaster
        moment = parse_at(at) if at else parse_at(view.default_at)
        window = horizon or view.default_horizon
        if forecaster.store is None or view.shapes is None:
            raise ServingError("the server has no data store (or the model no unit table), so "
                               "it cannot compute /hotspots. Start it with --data FILE (an "
                               "incident CSV or a run's clean.parquet).", status=503)
        shapes = view.shapes
        key = (bundle.feature_config.spatial_unit, view.role, *forecaster.key(moment, window),
               top)
        forecaster.check(moment, allow_stale)  # before the caches: they may hold stale windows
        body = responses.get(key)
        if body is None:
            forecast: Forecast | None = forecaster.cached(moment, window)
            if forecast is None:
                forecast = await bounded(lambda: forecaster.forecast(moment, window,
                                                                     allow_stale))
            body = hotspots_geojson(forecast, shapes, bundle, top)
            responses[key] = body
            while len(responses) > 4 * config.cache_windows:
                responses.popitem(last=False)
        return answered(body, GEOJSON, view, "hotspots", shadow=shadow, moment=moment,
                        window=window, allow_stale=allow_stale, top=top)

    def drawn(body: bytes | None) -> Response:
        require_model()
        if body is None:
            raise ServingError("the model has no unit table, so there is nothing to draw.",
                               status=404)
        return Response(body, media_type=GEOJSON)

    @app.get("/boundaries", summary="Region outlines (units dissolved by region), GeoJSON",
             response_class=Response)
    async def outlines() -> Response:
        return drawn(state.outlines)

    @app.get("/tracts", summary="Census tracts under the units (Los Angeles only), GeoJSON",
             response_class=Response)
    async def tracts() -> Response:
        return drawn(state.tracts)

    page = map_html(config.tiles, config.tiles_attribution)

    @app.get("/map", summary="Map of the forecast hotspots (phone-friendly; works offline)",
             response_class=HTMLResponse)
    async def map_page() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/map")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        swagger = f"{VENDOR_PATH}/swagger-ui-dist"
        # validatorUrl null: Swagger UI would otherwise fetch a badge from swagger.io.
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json", title="crimecast API",
            swagger_js_url=f"{swagger}/swagger-ui-bundle.js",
            swagger_css_url=f"{swagger}/swagger-ui.css",
            swagger_favicon_url=f"{swagger}/favicon-32x32.png",
            swagger_ui_parameters={"validatorUrl": None})

    @app.get("/model", summary="Summary of the model card")
    async def model() -> JSONResponse:
        require_model()
        return JSONResponse(state.summary)

    @app.get("/model/card", summary="The full model card (HTML)", response_class=HTMLResponse)
    async def card() -> HTMLResponse:
        html = require_model().bundle.card_html
        if html is None:
            raise ServingError("this model has no rendered model card.", status=404)
        return HTMLResponse(html)

    return Guard(app, token, config.max_body_bytes)
