"""Webhooks/s through the real gateway (uvicorn, signature verification, normalisation, acks=all write)
against raw aiokafka producer sends of the same bytes and against a bare FastAPI endpoint on uvicorn that
only produces the body (bench/bare_gateway.py: the web stack and the write, nothing of ours), measured in
the same run, printed as ratios.

    .venv/bin/python bench/ingest.py [--webhooks 2000] [--concurrency 32] [--rounds 3]
    .venv/bin/python bench/ingest.py --broker-kill [--webhooks 1500] [--concurrency 8]

Starts its own tansu broker (memory storage) and gateway process; finishes well under two minutes.

`--broker-kill` runs the embedded stack instead (`clonedesk up --only store,broker,gateway`: durable
broker, supervisor) and SIGKILLs the broker a third of the way through `--webhooks` signed webhooks sent
by `--concurrency` threads, each retrying a refused webhook the way a helpdesk does. It prints the
accepted webhooks/s before the kill, while the broker is away and after it is back, how many requests
got a 503 with Retry-After, how many got no HTTP answer at all (the contract says none may), and whether
every accepted webhook is on `helpdesk.events` afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from clonedesk.core.domain import topics  # noqa: E402
from clonedesk.core.kafka import ensure_topics, make_producer, wait_for_broker  # noqa: E402
from clonedesk.core.settings import Settings  # noqa: E402
from clonedesk.core.tenants import TenantStore  # noqa: E402
from clonedesk.core.domain.topics import all_topic_specs  # noqa: E402
from clonedesk.stack.infra import tansu_binary  # noqa: E402
from tests.ingest import payloads  # noqa: E402
from tests.ingest.harness import sign_zendesk, start_service, stop_service, wait_for_http  # noqa: E402

PARTITIONS = 4


def _request(host: str, port: str, path: str, body: bytes, headers: dict) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = next(int(line.split(":", 1)[1]) for line in lines[1:] if line.lower().startswith("content-length:"))
    return status, await reader.readexactly(length)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def timed(count: int, concurrency: int, send) -> tuple[float, list[float]]:
    """Run send(i) for i in range(count) with `concurrency` in flight; (seconds, per-call latencies)."""
    latencies: list[float] = []
    queue = iter(range(count))

    async def worker():
        for index in queue:
            started = time.perf_counter()
            await send(index)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies


async def bench(bootstrap: str, url: str, bare_url: str, tenant, count: int, concurrency: int,
                rounds: int) -> None:
    bodies = [payloads.body_of(payloads.zendesk_comment(f"bench-{i % 200}", f"bench-c{i}",
                                                        f"Where is my order {i}?", staff=False))
              for i in range(count)]
    keys = [f"{tenant.id}:bench-{i % 200}".encode() for i in range(count)]

    producer = make_producer(bootstrap)
    await producer.start()
    try:
        async def raw_send(i: int) -> None:
            await producer.send_and_wait(topics.HELPDESK_EVENTS, value=bodies[i], key=keys[i])

        await timed(min(200, count), concurrency, raw_send)  # warm-up
        raw_s, raw_lat = await timed(count, concurrency, raw_send)
    finally:
        await producer.stop()

    # A minimal keep-alive HTTP/1.1 client with the requests signed beforehand: the gateway, not the
    # client library or the signing, is what is measured (the client shares the machine's cores).
    async def through_http(target: str) -> tuple[float, list[float]]:
        host, port = target.removeprefix("http://").split(":")
        requests = [_request(host, port, f"/webhooks/zendesk/{tenant.id}", bodies[i],
                             sign_zendesk(tenant.zendesk_secret, bodies[i])) for i in range(count)]
        connections = [await asyncio.open_connection(host, int(port)) for _ in range(concurrency)]
        free = asyncio.Queue()
        for connection in connections:
            free.put_nowait(connection)

        async def post(i: int) -> None:
            reader, writer = await free.get()
            try:
                writer.write(requests[i])
                status, body = await _response(reader)
                if status != 200:
                    raise RuntimeError(f"{target} answered {status}: {body[:200]!r}")
            finally:
                free.put_nowait((reader, writer))

        await timed(min(200, count), concurrency, post)  # warm-up
        result = await timed(count, concurrency, post)
        for _, writer in connections:
            writer.close()
        return result

    # The two endpoints in turns, the order flipping each round: each round's ratio compares runs seconds
    # apart on this shared machine, and the median of the rounds' ratios is reported.
    bare_runs, gateway_runs = [], []
    for round_number in range(rounds):
        order = [(bare_url, bare_runs), (url, gateway_runs)]
        for target, runs in order if round_number % 2 == 0 else order[::-1]:
            runs.append(await through_http(target))
    ratios = [bare[0] / gateway[0] for bare, gateway in zip(bare_runs, gateway_runs)]  # (seconds, latencies)
    bare_s = statistics.median(seconds for seconds, _ in bare_runs)
    gateway_s = statistics.median(seconds for seconds, _ in gateway_runs)
    bare_lat = [latency for _, latencies in bare_runs for latency in latencies]
    gateway_lat = [latency for _, latencies in gateway_runs for latency in latencies]

    def p(latencies, q):
        return statistics.quantiles(latencies, n=100)[q - 1] * 1000

    raw_rate, bare_rate, gateway_rate = count / raw_s, count / bare_s, count / gateway_s
    print(f"webhooks: {count}, concurrency: {concurrency}, partitions: {PARTITIONS}")
    print(f"raw aiokafka send_and_wait : {raw_rate:9.1f} msg/s   p50 {p(raw_lat, 50):6.1f} ms   p99 {p(raw_lat, 99):6.1f} ms")
    print(f"bare FastAPI + produce     : {bare_rate:9.1f} webhooks/s   p50 {p(bare_lat, 50):6.1f} ms"
          f"   p99 {p(bare_lat, 99):6.1f} ms")
    print(f"gateway (verify+normalise) : {gateway_rate:9.1f} webhooks/s   p50 {p(gateway_lat, 50):6.1f} ms"
          f"   p99 {p(gateway_lat, 99):6.1f} ms")
    print(f"ratio gateway / raw        : {gateway_rate / raw_rate:9.3f}")
    print(f"ratio gateway / bare       : {statistics.median(ratios):9.3f}   (target: at least 0.5; median of"
          f" {rounds} rounds: {' / '.join(f'{r:.2f}' for r in ratios)})")


def broker_kill(count: int, threads: int) -> None:
    import json
    import os
    import signal
    import threading

    import httpx

    from clonedesk.core.kafka import make_consumer
    from clonedesk.v1 import events_pb2

    def cli(env, *args):
        return subprocess.run([sys.executable, "-m", "clonedesk", *args], env=env, capture_output=True,
                              text=True, timeout=180, check=True).stdout

    with tempfile.TemporaryDirectory(prefix="clonedesk-bench-kill-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLONEDESK_")}
        env.update(CLONEDESK_DATA_DIR=f"{tmp}/data", CLONEDESK_BROKER_PORT=str(free_port()),
                   CLONEDESK_STORE_PORT=str(free_port()), CLONEDESK_GATEWAY_PORT=str(free_port()),
                   CLONEDESK_TOPIC_PARTITIONS=str(PARTITIONS), CLONEDESK_LOG_LEVEL="WARNING")
        cli(env, "up", "--detach", "--only", "store,broker,gateway")
        try:
            secret = json.loads(cli(env, "tenant", "add", "bench", "--json"))["zendesk_secret"]
            url = f"http://127.0.0.1:{env['CLONEDESK_GATEWAY_PORT']}/webhooks/zendesk/bench"
            numbers = iter(range(count))
            lock = threading.Lock()
            accepted: list[tuple[float, str]] = []
            refused_503 = no_answer = other = 0
            killed_at: list[float] = []

            def sender():
                nonlocal refused_503, no_answer, other
                with httpx.Client(timeout=30) as client:
                    while True:
                        with lock:
                            number = next(numbers, None)
                        if number is None:
                            return
                        text = f"kill-bench message {number}"
                        body = payloads.body_of(payloads.zendesk_comment(f"k{number % 50}", f"kc{number}", text,
                                                                         staff=False))
                        while True:  # a helpdesk retries until the webhook is taken
                            try:
                                response = client.post(url, content=body, headers=sign_zendesk(secret, body))
                            except httpx.HTTPError:
                                with lock:
                                    no_answer += 1
                                time.sleep(0.2)
                                continue
                            if response.is_success:
                                with lock:
                                    accepted.append((time.monotonic(), text))
                                break
                            with lock:
                                if response.status_code == 503 and response.headers.get("retry-after"):
                                    refused_503 += 1
                                else:
                                    other += 1
                            time.sleep(0.2)

            state = json.loads(cli(env, "status", "--json"))
            pid = next(c["pid"] for c in state if c["name"] == "broker")

            def killer():
                while len(accepted) < count // 3:
                    time.sleep(0.005)
                killed_at.append(time.monotonic())
                os.kill(pid, signal.SIGKILL)

            started = time.monotonic()
            workers = [threading.Thread(target=sender) for _ in range(threads)] + [threading.Thread(target=killer)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
            ended = time.monotonic()
            times = sorted(t for t, _ in accepted)
            kill = killed_at[0]
            # "back": the first acceptance after the kill that was followed by steady ones
            after_kill = [t for t in times if t > kill]
            gap = max(range(len(after_kill)), key=lambda i: after_kill[i] - (after_kill[i - 1] if i else kill))
            back = after_kill[gap] if after_kill else ended
            phases = [("before the kill", started, kill), ("broker away", kill, back), ("after it is back", back, ended)]
            print(f"webhooks: {count}, sender threads: {threads}, broker SIGKILLed after {count // 3} accepted")
            for name, start, end in phases:
                n = sum(1 for t in times if start <= t < end or (end == ended and t == end))
                print(f"  {name:<17}: {n:5d} accepted in {end - start:6.1f} s = {n / max(end - start, 1e-9):7.1f}/s")
            print(f"  503 with Retry-After: {refused_503}; other refusals: {other}; no HTTP answer at all: {no_answer}")

            async def on_topic() -> set[str]:
                consumer = make_consumer(f"127.0.0.1:{env['CLONEDESK_BROKER_PORT']}", topics.HELPDESK_EVENTS,
                                         group_id=None)
                await consumer.start()
                seen: set[str] = set()
                try:
                    deadline = time.monotonic() + 60
                    wanted = {text for _, text in accepted}
                    while not wanted <= seen and time.monotonic() < deadline:
                        for records in (await consumer.getmany(timeout_ms=500)).values():
                            seen.update(events_pb2.HelpdeskEvent.FromString(r.value).body for r in records)
                finally:
                    await consumer.stop()
                return seen

            missing = {text for _, text in accepted} - asyncio.run(on_topic())
            print(f"  accepted and on helpdesk.events: {len(accepted) - len(missing)} of {len(accepted)}"
                  + (f"; MISSING {len(missing)}" if missing else ""))
        finally:
            subprocess.run([sys.executable, "-m", "clonedesk", "down"], env=env, capture_output=True, timeout=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--webhooks", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds of the bare endpoint and the gateway, in turns (the median ratio is reported)")
    parser.add_argument("--broker-kill", action="store_true", help="the embedded stack, its broker SIGKILLed")
    args = parser.parse_args()
    if args.broker_kill:
        broker_kill(args.webhooks, args.concurrency)
        return

    with tempfile.TemporaryDirectory(prefix="clonedesk-bench-ingest-") as tmp:
        root = Path(tmp)
        port = free_port()
        bootstrap = f"127.0.0.1:{port}"
        url_of_broker = f"tcp://{bootstrap}"
        broker = subprocess.Popen([tansu_binary(), "broker", "--listener-url", url_of_broker,
                                   "--advertised-listener-url", url_of_broker, "--storage-engine", "memory://tansu/"],
                                  stdout=open(root / "tansu.log", "ab"), stderr=subprocess.STDOUT)
        gateway = bare = None
        try:
            asyncio.run(wait_for_broker(bootstrap))
            asyncio.run(ensure_topics(bootstrap, all_topic_specs(PARTITIONS)))
            settings = Settings(data_dir=root / "data", kafka_bootstrap=bootstrap, gateway_port=free_port(),
                                topic_partitions=PARTITIONS, log_level="WARNING")
            tenant = TenantStore(settings.resolved_data_dir).add("bench")
            gateway = start_service(["ingest"], settings.child_env(), root / "gateway.log")
            url = f"http://127.0.0.1:{settings.gateway_port}"
            wait_for_http(f"{url}/healthz", gateway)
            bare_port = free_port()
            bare = subprocess.Popen([sys.executable, str(REPO / "bench" / "bare_gateway.py"), "--port", str(bare_port),
                                     "--bootstrap", bootstrap], stdout=open(root / "bare.log", "ab"),
                                    stderr=subprocess.STDOUT)
            bare_url = f"http://127.0.0.1:{bare_port}"
            wait_for_http(f"{bare_url}/healthz", bare)
            asyncio.run(bench(bootstrap, url, bare_url, tenant, args.webhooks, args.concurrency, args.rounds))
        finally:
            for process in (gateway, bare):
                if process is not None:
                    stop_service(process)
            broker.terminate()
            broker.wait(timeout=10)


if __name__ == "__main__":
    main()
