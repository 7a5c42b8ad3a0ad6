"""The ``emovec`` command line: a thin shell over the Python API.

``shared`` holds the app, its ``study`` group, consoles, common options and model loading; each command group
lives in its own module (``vectors``, ``steering``, ``serving``, ``evaluate``, ``finetune``, ``studies``), which imports
``shared`` only. Importing this package imports them all, so every command is registered on ``app``.
"""

from __future__ import annotations

import warnings

from emovec.cli.shared import app

# registers every command on ``app``; the import order is the order of ``emovec --help``
# isort: off
from emovec.cli import vectors, corpus, steering, serving, evaluate, finetune, studies  # noqa: F401
# isort: on

__all__ = ["app", "main"]


def main() -> None:
    warnings.filterwarnings("ignore", module="transformers")
    app()
