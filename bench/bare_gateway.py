"""The gateway benchmark's baseline: a bare FastAPI endpoint on uvicorn that only produces the request's
bytes to `helpdesk.events` (the gateway's producer settings, acks=all) and answers 200, with no signature,
parsing, normalisation, telemetry or logging. What the real gateway costs beyond it is ours.

    .venv/bin/python bench/bare_gateway.py --port P --bootstrap HOST:PORT
"""

from __future__ import annotations

import argparse
import sys
from contextlib import asynccontextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import uvicorn  # noqa: E402
from fastapi import FastAPI, Request  # noqa: E402
from fastapi.responses import JSONResponse  # noqa: E402

from clonedesk.core.domain import topics  # noqa: E402
from clonedesk.core.kafka import make_producer  # noqa: E402


def create_app(bootstrap: str) -> FastAPI:
    state = {}

    @asynccontextmanager
    async def lifespan(_app):
        state["producer"] = make_producer(bootstrap)  # needs the running loop
        await state["producer"].start()
        yield
        await state["producer"].stop()

    app = FastAPI(lifespan=lifespan)

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok"}

    @app.post("/webhooks/zendesk/{tenant_id}")
    async def webhook(tenant_id: str, request: Request):
        body = await request.body()
        await state["producer"].send_and_wait(topics.HELPDESK_EVENTS, value=body, key=tenant_id.encode())
        return JSONResponse({"status": "accepted"})

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--bootstrap", required=True)
    args = parser.parse_args()
    uvicorn.run(create_app(args.bootstrap), host="127.0.0.1", port=args.port, log_level="warning",
                access_log=False)


if __name__ == "__main__":
    main()
