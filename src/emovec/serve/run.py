"""Run an app with uvicorn on one process and one event loop (the model lives in this process)."""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

log = logging.getLogger("emovec.serve")


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (or ``localhost``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run_server(app: Any, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info") -> None:
    """Serve ``app`` until interrupted. Binds the loopback interface unless told otherwise.

    Args:
        app: an app from ``create_app``.
        host: the interface to bind; another than loopback exposes the model to the network.
        port: the port.
        log_level: uvicorn's log level.

    Example:
        >>> run_server(create_app(lm, vs), port=8000)
    """
    import uvicorn

    if not is_loopback(host):
        log.warning("binding %s: the model is reachable from the network; set an API key", host)
    uvicorn.run(app, host=host, port=port, log_level=log_level, workers=1, access_log=log_level == "debug")
