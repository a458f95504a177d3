"""Serve the API for black-box tests with name resolution cut off.

``python -m tests.ops.offline_server PORT`` runs ``service.main:app_from_env``
(settings from the ``IMI_`` environment) on ``127.0.0.1:PORT``. Webhook URLs
that a fuzzer invents must never be looked up or contacted, so before the app
is built this process:

- installs a webhook resolver that refuses every name (``localhost`` and IP
  literals are answered by the URL guard without any resolver), and
- replaces ``socket.getaddrinfo`` with one that answers only IP literals and
  ``localhost`` and raises ``gaierror`` for every other name (no DNS query
  can leave the process by any path).
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from typing import Any

_system_getaddrinfo = socket.getaddrinfo


def _is_local(host: Any) -> bool:
    if host is None:
        return True
    name = host.decode() if isinstance(host, bytes) else str(host)
    name = name.strip("[]").rstrip(".").split("%", 1)[0]
    if name.lower() == "localhost" or name.lower().endswith(".localhost"):
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def offline_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    """``socket.getaddrinfo`` for IP literals and ``localhost`` only."""
    if not _is_local(host):
        raise socket.gaierror(socket.EAI_NONAME, f"name resolution is disabled in this test server: {host!r}")
    return _system_getaddrinfo(host, *args, **kwargs)


async def refuse_names(host: str, port: int) -> list[str]:
    """The webhook resolver of this server: no name resolves."""
    raise OSError(f"name resolution is disabled in this test server: {host!r}")


def main(port: int) -> None:
    """Cut off name resolution, then serve on ``127.0.0.1:port``."""
    socket.getaddrinfo = offline_getaddrinfo
    from service.webhooks import urlguard

    urlguard.set_resolver(refuse_names)

    import uvicorn

    uvicorn.run(
        "service.main:app_from_env",
        factory=True,
        host="127.0.0.1",
        port=port,
        access_log=False,
        log_level="warning",
        log_config=None,
    )


if __name__ == "__main__":
    main(int(sys.argv[1]))
