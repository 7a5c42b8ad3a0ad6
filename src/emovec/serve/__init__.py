"""Serve a steered, monitored model behind an OpenAI-compatible API (``emovec serve``).

``create_app`` wraps a loaded model and vector set in a FastAPI app: ``/v1/chat/completions`` and
``/v1/completions`` (streamed or not), ``/v1/models``, ``/health`` and ``/metrics``. A request steers and reads
the model through the ``emovec`` block of its body (``EmovecOptions``); one worker thread decodes the queued
requests in batches with the library's ``generate``, rows with different steerings side by side. ``run_server``
runs the app with uvicorn. The server sits at the top of the package, beside the command line: nothing in
emovec imports it.

Example:
    >>> from emovec.serve import ServeOptions, create_app, run_server
    >>> run_server(create_app(lm, vs, ServeOptions(steer={"calm": 0.05})), port=8000)
"""

from emovec.serve.app import create_app
from emovec.serve.options import ServeOptions
from emovec.serve.run import run_server
from emovec.serve.schemas import EmovecOptions

__all__ = ["EmovecOptions", "ServeOptions", "create_app", "run_server"]
