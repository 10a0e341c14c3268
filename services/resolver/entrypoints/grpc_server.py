"""`clonedesk resolver`: the gRPC server (Resolver/Resolve, health, reflection) and its listener on
`adapters.published` for hot swaps. Only wiring: the work is in ResolverService."""

from __future__ import annotations

import asyncio
import logging

import grpc
from clonedesk.core.base_model import describe_base_model, ensure_base_model
from clonedesk.core.kafka import PoisonMessage, decode, make_consumer, make_producer, send_dead_letter
from clonedesk.core.settings import Settings
from clonedesk.core.domain.topics import ADAPTERS_PUBLISHED
from clonedesk.resolver.domain.requests import TENANT_HEADER, InvalidRequest
from clonedesk.resolver.bootstrap import build_service, make_engine
from clonedesk.resolver.engines.base import Engine
from clonedesk.resolver.service_layer.resolve import (
    NoLiveAdapter,
    Overloaded,
    ResolverService,
    TenantIsolationError,
    UnknownTenant,
)
from clonedesk.resolver.settings import ResolverSettings
from clonedesk.v1 import adapters_pb2, resolver_pb2, resolver_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection
from opentelemetry import propagate, trace

log = logging.getLogger(__name__)
tracer = trace.get_tracer("clonedesk.resolver.grpc")

SERVICE_NAME = resolver_pb2.DESCRIPTOR.services_by_name["Resolver"].full_name

_STATUS = {
    InvalidRequest: grpc.StatusCode.INVALID_ARGUMENT,
    UnknownTenant: grpc.StatusCode.NOT_FOUND,
    NoLiveAdapter: grpc.StatusCode.FAILED_PRECONDITION,
    Overloaded: grpc.StatusCode.RESOURCE_EXHAUSTED,
    TimeoutError: grpc.StatusCode.DEADLINE_EXCEEDED,
    TenantIsolationError: grpc.StatusCode.INTERNAL,
}


class ResolverServicer(resolver_pb2_grpc.ResolverServicer):
    def __init__(self):
        self.service: ResolverService | None = None  # set once the engine is up

    async def Resolve(self, request, context):  # noqa: N802 - gRPC method name
        if self.service is None:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the resolver is still loading its base model")
        metadata = {k: v for k, v in context.invocation_metadata() or () if isinstance(v, str)}
        # The routing header (what a tenant-affine ingress hashes on) must name the request's tenant:
        # a request routed as one tenant's and carrying another's is refused, never answered.
        routed_as = metadata.get(TENANT_HEADER)
        if routed_as is not None and routed_as != request.tenant_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                f"{TENANT_HEADER} {routed_as!r} does not match tenant_id {request.tenant_id!r}")
        # The caller's trace (the bridge's span) continues here: W3C traceparent in the metadata.
        parent = propagate.extract(metadata)
        try:
            with tracer.start_as_current_span("Resolver/Resolve", context=parent, kind=trace.SpanKind.SERVER):
                return await self.service.resolve(request, timeout=context.time_remaining())
        except tuple(_STATUS) as exc:
            code = next(c for t, c in _STATUS.items() if isinstance(exc, t))
            if code == grpc.StatusCode.INTERNAL:
                log.error("tenant isolation check failed", extra={"error": str(exc)})
            await context.abort(code, str(exc) or type(exc).__name__)


class ResolverServer:
    """The gRPC server; `attach(service)` makes it serve (health turns SERVING)."""

    def __init__(self, port: int, host: str = "127.0.0.1"):
        self.address = f"{host}:{port}"
        self.server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        self.servicer = ResolverServicer()
        self.health = HealthServicer()
        resolver_pb2_grpc.add_ResolverServicer_to_server(self.servicer, self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            (
                SERVICE_NAME,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ),
            self.server,
        )
        if self.server.add_insecure_port(self.address) == 0:
            raise OSError(f"cannot listen on {self.address}")

    async def start(self) -> None:
        await self.server.start()
        for name in ("", SERVICE_NAME):
            await self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)

    async def attach(self, service: ResolverService) -> None:
        self.servicer.service = service
        for name in ("", SERVICE_NAME):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

    async def stop(self, grace: float = 5.0) -> None:
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)


async def follow_publications(service: ResolverService, bootstrap: str, stop: asyncio.Event,
                              registry_check_s: float = 30.0) -> None:
    """Apply every `adapters.published` record to the adapter cache. Each resolver replica reads the whole
    topic from the start, without a consumer group (no join to wait for, no offsets to keep): replays of
    old publications change nothing. Every `registry_check_s` it also compares what it serves with the
    registry's `current`, so a registry moved without an announcement is followed too."""
    consumer = make_consumer(bootstrap, ADAPTERS_PUBLISHED, group_id=None)
    producer = make_producer(bootstrap)
    loop = asyncio.get_running_loop()
    next_check = loop.time() + registry_check_s
    try:
        await consumer.start()
        await producer.start()
        while not stop.is_set():
            if loop.time() >= next_check:
                next_check = loop.time() + registry_check_s
                try:
                    for name in await service.adapters.follow_registry():
                        log.info("registry moved without an announcement: swapped", extra={"adapter": name})
                except Exception:  # noqa: BLE001 - a bad version folder must not stop the follower
                    log.exception("could not follow the registry")
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    try:
                        published = decode(adapters_pb2.AdapterPublished, record.value)
                        if not published.tenant_id or published.version <= 0:
                            raise PoisonMessage("publication without tenant or version")
                        service.tenants.get(published.tenant_id)  # UnknownTenant: not ours to serve
                        await service.adapters.publish(published.tenant_id, published.version, published.path)
                    except Exception as exc:  # noqa: BLE001 - a bad publication must not stop the swaps of others
                        log.exception("publication not applied", extra={"offset": record.offset})
                        await send_dead_letter(
                            producer,
                            ADAPTERS_PUBLISHED,
                            record.key,
                            record.value,
                            str(exc),
                            list(record.headers or []),
                            record.partition,
                            record.offset,
                        )
    finally:
        await consumer.stop()
        await producer.stop()


async def resolve_base_model(settings: Settings, stop: asyncio.Event) -> str | None:
    """The base model the settings select (clonedesk.core.base_model): a configured one as it is, the
    default or the tiny one made once per data dir by whichever service needs it first (a file lock makes
    the others wait for it). None if stopped meanwhile."""
    base = await asyncio.get_running_loop().run_in_executor(None, ensure_base_model, settings)
    if stop.is_set():
        return None
    log.info("base model", extra={"base_model": base, "base_model_is": describe_base_model(base)})
    return base


async def run_resolver(
    settings: Settings, resolver_settings: ResolverSettings, stop: asyncio.Event, engine: Engine | None = None
) -> None:
    server = ResolverServer(settings.resolver_port, host=settings.bind_host)
    await server.start()
    log.info("resolver listening", extra={"address": server.address, "engine": settings.engine})
    follower = None
    try:
        if engine is None:
            base = await resolve_base_model(settings, stop)
            if base is None:
                return
            engine = make_engine(settings.engine, base, resolver_settings)
            await engine.start()
        service = build_service(engine, settings, resolver_settings)
        await server.attach(service)
        follower = asyncio.create_task(follow_publications(service, settings.bootstrap, stop,
                                                           resolver_settings.registry_check_s))
        stopped = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({follower, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if follower in done:
            follower.result()  # a dead publication listener is fatal: the supervisor restarts us
    finally:
        if follower and not follower.done():
            follower.cancel()
        await server.stop()
        if engine is not None:
            await engine.close()
