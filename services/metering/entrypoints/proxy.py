"""The `api` process in the embedded stack: chDB opens a data path from one process only, and the
metering process holds it. So the public API port forwards each request, unchanged, to the same app
served by the metering process on a unix socket. (With a ClickHouse server, `api` queries it itself.)
`/readyz` is forwarded like the rest: ready when the metering process answers and its chDB does; 503 while
that process is not up."""

from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

FORWARDED_REQUEST_HEADERS = ("authorization", "accept", "user-agent", "content-type")
FORWARDED_RESPONSE_HEADERS = ("content-type", "www-authenticate")


def metering_client(socket_path: Path, timeout: float = 60.0) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(uds=str(socket_path)),
                             base_url="http://metering", timeout=timeout)


def create_proxy_app(socket_path: Path) -> Starlette:
    client = metering_client(socket_path)

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def forward(request: Request) -> Response:
        from clonedesk.metering.entrypoints.api import MAX_BODY_BYTES, body_too_large

        if body_too_large(request):
            return JSONResponse({"detail": f"the body is larger than {MAX_BODY_BYTES} bytes"}, status_code=413)
        headers = {k: v for k, v in request.headers.items() if k.lower() in FORWARDED_REQUEST_HEADERS}
        try:
            upstream = await client.request(request.method, request.url.path, params=request.query_params,
                                            headers=headers, content=await request.body())
        except httpx.TransportError:
            return JSONResponse({"detail": "metering is not running yet; try again shortly"}, status_code=503,
                                headers={"Retry-After": "2"})
        kept = {k: v for k, v in upstream.headers.items() if k.lower() in FORWARDED_RESPONSE_HEADERS}
        return Response(upstream.content, status_code=upstream.status_code, headers=kept)

    @asynccontextmanager
    async def lifespan(_app):
        yield
        await client.aclose()

    return Starlette(routes=[Route("/healthz", healthz), Route("/{path:path}", forward, methods=["GET", "POST"])],
                     lifespan=lifespan)
