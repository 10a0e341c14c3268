"""Trainer benchmark.

1. Training throughput: tokens/s of our training loop (clonedesk.trainer.adapters.lora.train_on_batches)
   against a bare peft + torch loop (forward, backward, AdamW step) on the very same batches of the
   same base model and LoRA config, in the same run (interleaved, best of N each).
2. Freshness: the time from a solved ticket's samples reaching `training.samples` to its tenant's
   refreshed adapter being published on `adapters.published`, through a real broker and the real
   worker, against the refresh's training step alone as the baseline (the rest is holdout scoring of
   challenger and champion, the registry and Kafka). The promotion margin is opened up here so the
   refresh is always promoted: this measures the pipeline, not the model.

Everything is local: a tansu broker (memory storage) child process and a temp data dir.
    .venv/bin/python bench/train.py [--base DIR] [--dialogues 40] [--repeats 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from clonedesk.core.kafka import decode, encode, ensure_topics, make_consumer, make_producer, wait_for_broker
from clonedesk.core.settings import Settings
from clonedesk.core.topics import ADAPTERS_PUBLISHED, TRAINING_SAMPLES, all_topic_specs, message_key
from clonedesk.stack.infra import tansu_binary
from clonedesk.trainer.adapters.base_model import build_base_model
from clonedesk.trainer.adapters.lora import LoraTrainingConfig, load_base, make_batches, train_on_batches
from clonedesk.trainer.adapters.sgd import find_sgd_dir, tenant_samples
from clonedesk.trainer.config import TrainerSettings
from clonedesk.trainer.domain.holdout import is_holdout
from clonedesk.trainer.entrypoints.worker import TrainerWorker
from clonedesk.v1 import adapters_pb2

console = Console(width=140)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fresh_lora(base: str, config: LoraTrainingConfig):
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(config.seed)
    model, tokenizer = load_base(base)
    model = get_peft_model(model, LoraConfig(r=config.rank, lora_alpha=config.alpha, lora_dropout=config.dropout,
                                             target_modules=list(config.target_modules), task_type="CAUSAL_LM"))
    return model, tokenizer


def bare_loop(model, batches, learning_rate: float) -> int:
    """The plainest peft + torch loop: what our loop is measured against."""
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=learning_rate)
    model.train()
    tokens = 0
    for batch in batches:
        loss = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, labels=batch.labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        tokens += batch.tokens
    return tokens


def throughput(base: str, samples, repeats: int) -> tuple[float, float, int]:
    config = LoraTrainingConfig(max_steps=30)
    _, tokenizer = load_base(base)
    batches = make_batches(tokenizer, samples, config)
    ours, bare = [], []
    for _ in range(repeats):
        model, _ = fresh_lora(base, config)
        started = time.perf_counter()
        tokens = bare_loop(model, batches, config.learning_rate)
        bare.append(tokens / (time.perf_counter() - started))
        model, _ = fresh_lora(base, config)
        started = time.perf_counter()
        tokens, _ = train_on_batches(model, batches, config)
        ours.append(tokens / (time.perf_counter() - started))
    return max(ours), max(bare), len(batches)


async def freshness(base: str, first, refresh, tmp: Path) -> tuple[float, float]:
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    broker = subprocess.Popen([tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url,
                               "--storage-engine", "memory://tansu/"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    bootstrap = f"127.0.0.1:{port}"
    try:
        await wait_for_broker(bootstrap, 30)
        await ensure_topics(bootstrap, all_topic_specs(2))
        settings = Settings(data_dir=tmp / "data", kafka_bootstrap=bootstrap, base_model=base)
        new_trainable = sum(1 for s in refresh if not is_holdout(s.ticket_id, 0.2))
        config = TrainerSettings(first_min_samples=len([s for s in first if not is_holdout(s.ticket_id, 0.2)]),
                                 refresh_min_new_samples=new_trainable, holdout_fraction=0.2, max_steps=30,
                                 max_eval_turns=16, group_id="bench-" + uuid.uuid4().hex[:6],
                                 promotion_margin=1.0,  # measures the pipeline: every refresh is promoted
                                 settle_s=0.0)  # each batch arrives whole: settling would add only its wait
        worker = TrainerWorker(settings, config)
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        producer = make_producer(bootstrap)
        await producer.start()
        consumer = make_consumer(bootstrap, ADAPTERS_PUBLISHED, group_id="bench-" + uuid.uuid4().hex[:6])
        await consumer.start()

        async def send(samples):
            for sample in samples:
                await producer.send(TRAINING_SAMPLES, encode(sample), key=message_key(sample.tenant_id, sample.ticket_id))
            await producer.flush()

        async def published(version: int) -> adapters_pb2.AdapterPublished:
            while True:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    for record in records:
                        message = decode(adapters_pb2.AdapterPublished, record.value)
                        if message.version == version:
                            return message

        try:
            await send(first)
            await asyncio.wait_for(published(1), 300)
            solved_at = time.perf_counter()
            await send(refresh)
            message = await asyncio.wait_for(published(2), 300)
            latency = time.perf_counter() - solved_at
            meta = worker.registry.meta(message.tenant_id, 2)
            run_seconds = meta["training"]["seconds"]
            return latency, run_seconds
        finally:
            stop.set()
            await task
            await consumer.stop()
            await producer.stop()
    finally:
        broker.terminate()
        broker.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", help="base model dir (default: build the small one into a temp dir)")
    parser.add_argument("--dialogues", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))
    sgd = find_sgd_dir()
    if sgd is None:
        raise SystemExit("no SGD dialogues found (../shared/datasets/sgd)")
    with tempfile.TemporaryDirectory(prefix="clonedesk-bench-") as tmp:
        tmp = Path(tmp)
        base = args.base or str(build_base_model(tmp / "base", progress=True))
        samples = tenant_samples(sgd / "train_Banks_1.jsonl", "bench-bank", limit=args.dialogues)
        trainable = [s for s in samples if not is_holdout(s.ticket_id, 0.2)]
        ours, bare, steps = throughput(base, trainable, args.repeats)

        tickets = list(dict.fromkeys(s.ticket_id for s in samples))
        cut = set(tickets[: max(1, len(tickets) - 3)])
        first = [s for s in samples if s.ticket_id in cut]
        refresh = [s for s in samples if s.ticket_id not in cut]  # the last three solved tickets
        latency, run_seconds = asyncio.run(freshness(base, first, refresh, tmp))

    table = Table(title="trainer benchmark (1 torch thread)")
    for column in ("measure", "ours", "baseline", "ratio"):
        table.add_column(column, justify="right" if column != "measure" else "left")
    table.add_row(f"training tokens/s ({steps} batches)", f"{ours:,.0f}", f"{bare:,.0f} (bare peft+torch)",
                  f"{ours / bare:.2f}x")
    table.add_row("solved ticket -> refreshed adapter published (s)", f"{latency:.1f}",
                  f"{run_seconds:.1f} (its training step alone)", f"{latency / run_seconds:.2f}x")
    console.print(table)


if __name__ == "__main__":
    main()
