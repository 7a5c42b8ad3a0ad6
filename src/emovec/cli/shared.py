"""What every command group of the ``emovec`` command line shares: the app and its ``study`` group, consoles,
common options, error handling and model loading. Command modules import this; nothing here imports them."""

from __future__ import annotations

import inspect
import os
import time
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar, get_type_hints

import typer
from rich.console import Console

from emovec._progress import set_quiet
from emovec.errors import EmovecError
from emovec.executors import ExecutorError, ExecutorOptions

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Functional emotion vectors for language models.")
study_app = typer.Typer(no_args_is_help=True, help="Research studies built on emovec.")
app.add_typer(study_app, name="study")
err = Console(stderr=True)
out = Console()
F = TypeVar("F", bound=Callable[..., Any])


@app.callback()
def _global_options(
    ctx: typer.Context,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bars or stage lines (as "
                                        "EMOVEC_PROGRESS=0); results and errors are still printed")] = False,
) -> None:
    # Long stages show a bar in a terminal and one line each elsewhere (emovec._progress); --quiet turns both off
    # for this command only.
    set_quiet(quiet)
    ctx.call_on_close(lambda: set_quiet(False))

ModelOpt = Annotated[str, typer.Option("--model", "-m", help="built-in name, .gguf path, checkpoint dir or hub id")]
DeviceOpt = Annotated[str | None, typer.Option(help="cpu, cuda, cuda:1, mps (default: best available)")]
DtypeOpt = Annotated[str | None, typer.Option(help="float32, bfloat16, float16 (default: float32 on CPU)")]
LayersOpt = Annotated[str | None, typer.Option(help="all, 12, 5,10,-1, 0-29 or 0-29:2")]
ExecutorOpt = Annotated[str | None, typer.Option("--executor", help="where batches run: local (default) or ray "
                                                 "(pip install 'emovec\\[ray]')")]
WorkersOpt = Annotated[int, typer.Option("--workers", help="ray: model replicas (actors)")]
GpusOpt = Annotated[float | None, typer.Option("--gpus-per-worker", help="ray: GPUs per replica (default: one "
                                                "per replica when the cluster has a GPU for each, else none)")]
AddressOpt = Annotated[str | None, typer.Option("--address", help="ray: an existing cluster (default: $RAY_ADDRESS, "
                                                "else a local instance)")]


def executor_options(kind: str | None, workers: int = 2, gpus_per_worker: float | None = None,
                     address: str | None = None) -> ExecutorOptions | None:
    """The ``ExecutorOptions`` the ``--executor`` flags ask for, or ``None`` when no ``--executor`` was given."""
    if kind is None:
        return None
    if kind not in ("local", "ray"):
        raise ExecutorError(f"--executor {kind!r}: choose local or ray")
    return ExecutorOptions(kind=kind, workers=workers, gpus_per_worker=gpus_per_worker,  # type: ignore[arg-type]
                           address=address)


def _flag(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


def with_executor(workers: int | None = 2) -> Callable[[F], F]:
    """Give a command the executor flags once, here: ``--executor``, ``--workers`` (unless ``workers`` is
    ``None``: one replica), ``--gpus-per-worker`` and ``--address``; the command receives them as one typed
    ``where: ExecutorOptions | None`` (``None`` without ``--executor``), checked before it runs.

    Example:
        >>> @app.command()
        ... @friendly
        ... @with_executor()
        ... def sweep(config: Path, where: ExecutorOptions | None = None) -> None: ...
    """

    def decorate(fn: F) -> F:
        hints = get_type_hints(fn, include_extras=True)
        own = [p.replace(annotation=hints.get(p.name, p.annotation))
               for p in inspect.signature(fn).parameters.values() if p.name != "where"]
        flags = [_flag("executor", ExecutorOpt, None), *([_flag("workers", WorkersOpt, workers)] if workers else []),
                 _flag("gpus_per_worker", GpusOpt, None), _flag("address", AddressOpt, None)]

        @wraps(fn)
        def wrapper(*args: Any, executor: str | None = None, workers: int = workers or 1,
                    gpus_per_worker: float | None = None, address: str | None = None, **kwargs: Any) -> Any:
            return fn(*args, where=executor_options(executor, workers, gpus_per_worker, address), **kwargs)

        params = [*own, *flags]
        wrapper.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        return wrapper  # type: ignore[return-value]

    return decorate


def friendly(fn: F) -> F:
    """Turn emovec's errors into one clear message and exit code 2, with no traceback."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (EmovecError, FileNotFoundError, KeyError) as exc:
            message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
            err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def _load(model: str, device: str | None, dtype: str | None) -> Any:
    from emovec.models import load_model

    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    start = time.perf_counter()
    with err.status(f"loading {model}"):
        lm = load_model(model, device=device, dtype=dtype)
    err.print(f"loaded {lm.name} ({lm.source.family}, {lm.n_layers} layers, width {lm.d_model}) on {lm.device} "
              f"in {time.perf_counter() - start:.1f}s")
    return lm


def _load_for(vectors_dir: Path, force: bool, device: str | None, dtype: str | None) -> tuple[Any, Any]:
    from emovec.vectors import VectorSet

    vs = VectorSet.load(vectors_dir)
    source = vs.provenance.model
    lm = _load(source.name if source.kind == "builtin" else source.location, device, dtype)
    vs.check_compatible(lm, force=force)
    return lm, vs
