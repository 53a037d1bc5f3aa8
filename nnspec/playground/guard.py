"""Safe by default: only the local server's own pages may talk to it.

A page on another site can make a browser send requests to 127.0.0.1 (and, by DNS rebinding,
make its own name resolve there), so the address alone protects nothing. Every request must
name this server in its ``Host`` header; one that carries an ``Origin`` (browsers send it on
every cross-site request and on every POST) must come from this server too; and a POST must
be JSON, which a cross-site form cannot send without the browser first asking (CORS), and
this server never answers yes.
"""

from __future__ import annotations

from starlette.responses import PlainTextResponse


def local_names(port: int) -> set[str]:
    """The ``Host`` values that name this server."""
    return {f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"}


class LocalOnly:
    """ASGI middleware: refuse (403) requests not addressed to, or not sent from, the server.

    A plain ASGI class, not Starlette's BaseHTTPMiddleware, so that the event stream goes
    through unbuffered."""

    def __init__(self, app, hosts: set[str]):
        self.app = app
        self.hosts = set(hosts)
        self.origins = {f"http://{h}" for h in self.hosts}

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        why = self.refusal(scope.get("method", "GET"), headers)
        if why is not None:
            await PlainTextResponse(why, status_code=403)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def refusal(self, method: str, headers: dict[str, str]) -> str | None:
        """Why a request is refused, or None."""
        host = headers.get("host", "")
        if host not in self.hosts:
            return (
                f"refused: Host {host!r} is not this server; expected one of "
                f"{', '.join(sorted(self.hosts))} (the playground serves its own page only)"
            )
        origin = headers.get("origin")
        if origin is not None and origin not in self.origins:
            return f"refused: Origin {origin!r} is not this server's page"
        if method == "POST" and not headers.get("content-type", "").startswith("application/json"):
            return "refused: expected a JSON request (Content-Type: application/json)"
        return None
