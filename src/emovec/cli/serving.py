"""The ``serve`` command of the ``emovec`` CLI: a thin shell over ``emovec.serve``. Registered on the shared app when
``emovec.cli`` imports this module."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Annotated

import typer

from emovec.cli.shared import DeviceOpt, DtypeOpt, _load, app, err, friendly


def _need_serve_extra() -> None:
    from emovec.errors import MissingPackageError

    missing = [m for m in ("fastapi", "uvicorn", "prometheus_client") if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingPackageError(f"emovec serve needs {', '.join(missing)}: pip install 'emovec[serve]'")


@app.command()
@friendly
def serve(
    model: Annotated[str, typer.Argument(help="built-in name, .gguf path, checkpoint dir or hub id")] = (
        "smollm2-135m-instruct"),
    vectors_dir: Annotated[Path | None, typer.Option("--vectors", help="a vector set directory (needed for "
                                                     "steering and readouts)")] = None,
    steer_terms: Annotated[list[str], typer.Option("--steer", help="NAME=STRENGTH: the default steering of "
                                                   "requests that give none")] = [],  # noqa: B006
    layer: Annotated[int | None, typer.Option(help="the default steered layer (default: the set's layer)")] = None,
    host: Annotated[str, typer.Option(help="interface to bind; only loopback by default")] = "127.0.0.1",
    port: int = 8000,
    api_key: Annotated[str | None, typer.Option(envvar="EMOVEC_API_KEY", help="require Authorization: Bearer "
                                                "KEY on every route but /health")] = None,
    name: Annotated[str | None, typer.Option(help="the model name clients send (default: the model's)")] = None,
    max_batch: Annotated[int, typer.Option(help="requests decoded together at most")] = 16,
    max_queue: Annotated[int, typer.Option(help="waiting requests at most; more get 429")] = 256,
    timeout: Annotated[float, typer.Option(help="seconds a request may take, queue included; then 504")] = 600.0,
    max_tokens_limit: Annotated[int, typer.Option(help="the largest max_tokens accepted")] = 1024,
    device: DeviceOpt = None,
    dtype: DtypeOpt = None,
) -> None:
    """Serve a model, steered and read per request, behind an OpenAI-compatible API (chat and text completions,
    streamed or not; /v1/models, /health, /metrics)."""
    _need_serve_extra()
    from emovec.parsing import parse_terms
    from emovec.serve import ServeOptions, create_app, run_server
    from emovec.serve.run import is_loopback
    from emovec.vectors import VectorSet

    steer = {t.label: float(t.strength) for t in parse_terms(steer_terms, [], [])}  # type: ignore[arg-type]
    vs = VectorSet.load(vectors_dir) if vectors_dir is not None else None
    if steer and vs is None:
        raise typer.BadParameter("--steer needs --vectors DIR")
    options = ServeOptions(name=name, api_key=api_key or None, steer=steer, layer=layer, max_batch=max_batch,
                           max_queue=max_queue, timeout_s=timeout, max_tokens_limit=max_tokens_limit,
                           default_max_tokens=min(256, max_tokens_limit))
    lm = _load(model, device, dtype)
    served = create_app(lm, vs, options)
    if not is_loopback(host) and not options.api_key:
        err.print(f"[bold yellow]warning:[/] {host} is reachable from the network and no --api-key is set")
    err.print(f"serving {served.state.served.intake.name} on http://{host}:{port}/v1"
              f"{' (API key required)' if options.api_key else ''}", highlight=False)
    run_server(served, host=host, port=port)
