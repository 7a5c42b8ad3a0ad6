"""The FastAPI app: routes, error bodies and the worker's lifetime.

``create_app`` loads nothing: it takes a loaded model (and vector set) and serves it. The model is used by one
worker thread only (``Batcher``); the request side checks requests with a copy of the tokenizer.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from emovec.models.loading import LoadedModel
from emovec.serve.batcher import Batcher, QueueFull, ServerClosing
from emovec.serve.engine import Engine
from emovec.serve.exchange import ClientGone, Inbox, collect, stream
from emovec.serve.guard import Guard, Observe
from emovec.serve.intake import Intake, RequestError, check_chat, completion_prompts, conversation
from emovec.serve.jobs import RowSteer
from emovec.serve.metrics import Metrics
from emovec.serve.options import ServeOptions
from emovec.serve.replies import Kind, ReplyShape, error_body
from emovec.serve.schemas import (
    BaseRequest,
    ChatRequest,
    CompletionRequest,
    EmovecOptions,
    ModelCard,
    ModelList,
)
from emovec.serve.validation import describe
from emovec.vectors.vector_set import VectorSet


@dataclass
class Served:
    """What the routes share: the checks, the queue, the metrics and the defaults."""

    intake: Intake
    batcher: Batcher
    metrics: Metrics
    default_steer: RowSteer | None
    created: int

    @property
    def options(self) -> ServeOptions:
        return self.intake.options

    def card(self) -> ModelCard:
        vs = self.intake.vectors
        info: dict[str, object] = {"steer": dict(self.default_steer.terms) if self.default_steer else {},
                                   "vectors": list(vs.names) if vs is not None else [],
                                   "layers": list(vs.layers) if vs is not None else [],
                                   "default_layer": self.intake.default_layer() if vs is not None else None}
        return ModelCard(id=self.intake.name, created=self.created, emovec=info)

    async def answer(self, request: Request, body: BaseRequest, kind: Kind,
                     prompts: Sequence[str | list[dict[str, str]]], asked: int | None) -> Response:
        """Queue the request's jobs and answer: one body, or a stream."""
        inbox = Inbox()
        jobs = self.intake.jobs(body, prompts, kind == "chat", asked, inbox.sink, self.default_steer)
        try:
            self.batcher.submit(jobs)
        except QueueFull as exc:
            raise RequestError(str(exc), None, 429, "queue_full") from None
        except ServerClosing as exc:
            raise RequestError(str(exc), None, 503, "closing") from None
        shape = ReplyShape(kind, self.intake.name, jobs[0].steer, jobs[0].monitor, sum(j.prompt_tokens for j in jobs))
        headers = _ignored(body)
        timeout = self.options.timeout_s
        if body.stream:
            usage = body.stream_options is not None and body.stream_options.include_usage
            return StreamingResponse(stream(inbox, jobs, shape, timeout, usage, self.metrics),
                                     media_type="text/event-stream", headers={"cache-control": "no-cache", **headers})
        try:
            results = await collect(inbox, jobs, request, timeout, self.metrics, shape)
        except ClientGone:
            return Response(status_code=499)
        return Response(shape.whole(results).model_dump_json(), media_type="application/json", headers=headers)


def _ignored(body: BaseRequest) -> dict[str, str]:
    """The ``x-emovec-ignored-fields`` header naming top-level fields emovec accepted but does not use."""
    extra = sorted(body.model_extra or {})
    return {"x-emovec-ignored-fields": ",".join(extra)} if extra else {}


def _served(request: Request) -> Served:
    served: Served = request.app.state.served
    return served


def _error(status: int, message: str, param: str | None = None, code: str | None = None) -> JSONResponse:
    return JSONResponse(error_body(message, status, param, code).model_dump(), status_code=status)


def _errors(app: FastAPI) -> None:
    """Every refusal in OpenAI's error shape, naming the field and what it accepts."""

    @app.exception_handler(RequestError)
    async def refused(_request: Request, exc: RequestError) -> JSONResponse:
        return _error(exc.status, exc.message, exc.param, exc.code)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        message, param = describe(exc.errors())
        return _error(400, message, param, "invalid_request")

    @app.exception_handler(HTTPException)
    async def http(_request: Request, exc: HTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail))


def _routes(app: FastAPI) -> None:
    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics")
    async def metrics(request: Request) -> Response:
        return PlainTextResponse(_served(request).metrics.text(), media_type="text/plain; version=0.0.4")

    @app.get("/v1/models")
    async def models(request: Request) -> ModelList:
        return ModelList(data=[_served(request).card()])

    @app.get("/v1/models/{model:path}")
    async def model(request: Request, model: str) -> ModelCard:
        served = _served(request)
        served.intake.check_model(model)
        return served.card()

    @app.post("/v1/chat/completions")
    async def chat(request: Request, body: ChatRequest) -> Response:
        served = _served(request)
        check_chat(body)
        prompts = [conversation(body.messages, served.options.max_messages)]
        return await served.answer(request, body, "chat", prompts, body.max_completion_tokens or body.max_tokens)

    @app.post("/v1/completions")
    async def completions(request: Request, body: CompletionRequest) -> Response:
        served = _served(request)
        prompts = completion_prompts(body, served.options.max_prompts)
        return await served.answer(request, body, "text", list(prompts), body.max_tokens)


def _served_state(lm: LoadedModel, vectors: VectorSet | None, options: ServeOptions) -> Served:
    """Check the vector set and the default steering against the model, and build the worker."""
    if vectors is not None:
        vectors.check_compatible(lm)
    context = getattr(getattr(lm.model, "config", None), "max_position_embeddings", None)
    own = dataclasses.replace(lm, tokenizer=copy.deepcopy(lm.tokenizer))
    intake = Intake(own, vectors, options, options.name or lm.name, int(context) if context else None)
    default = None
    if options.steer:
        default = intake.steer(EmovecOptions(steer=options.steer, layer=options.layer), None)
    metrics = Metrics()
    engine = Engine(lm, vectors, metrics.decode_steps.inc)
    batcher = Batcher(engine.run, options.max_batch, options.max_queue, options.batch_wait_s,
                      on_batch=metrics.batch_size.observe)
    metrics.watch(lambda: batcher.depth, lambda: len(batcher.running))
    return Served(intake, batcher, metrics, default, int(time.time()))


def create_app(lm: LoadedModel, vectors: VectorSet | None = None, options: ServeOptions | None = None) -> FastAPI:
    """An ASGI app serving ``lm`` (steered and read with ``vectors``) behind an OpenAI-compatible API.

    Args:
        lm: the loaded model; the app's worker thread is the only user of it while the app runs.
        vectors: the vector set requests steer and read with (and ``options.steer`` names), or ``None``.
        options: limits, the API key and the default steering.

    Returns:
        The FastAPI app, behind the API key and body size checks; run it with uvicorn (``run_server``). Its
        worker starts and stops with the app's lifespan; ``app.state.served`` holds its parts.

    Example:
        >>> app = create_app(lm, vs, ServeOptions(steer={"calm": 0.05}))
        >>> run_server(app, port=8000)
    """
    options = options or ServeOptions()
    served = _served_state(lm, vectors, options)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        served.batcher.start()
        try:
            yield
        finally:
            await run_in_threadpool(served.batcher.close)

    app = FastAPI(title="emovec serve", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.served = served
    _errors(app)
    _routes(app)
    app.add_middleware(Guard, api_key=options.api_key, max_body=options.max_body_bytes)
    app.add_middleware(Observe, metrics=served.metrics)  # the last added runs first: it sees refusals too
    return app
