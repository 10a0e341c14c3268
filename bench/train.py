"""Trainer benchmark.

1. The training loop on the real base model (SmolLM2-135M-Instruct by default): the trainer's loop
   (clonedesk.trainer.adapters.training_loop with the trainer's default LoraTrainingConfig) against the
   naive peft loop this work started from (LoRA r16 on every linear layer of every layer, the model's own
   full-vocabulary loss on every position, float32, batches of a random mix padded to their longest, AdamW
   at a constant rate), on the
   same training samples of one SGD business, same batch size and epochs, each in its own process (for
   its peak resident memory). Reported: tokens/s, the held-out loss after the same samples (target-token
   cross-entropy on held-out tickets, computed the same way for both), the final training loss, peak RSS,
   and the line `speed-up over the naive loop: N.NNx`. `--ablations` adds one row per choice
   (target-only logits, bf16, top-layer LoRA with and without the frozen-prefix cache, length bucketing)
   to show what each buys and costs; the trainer's defaults were chosen from these rows.
2. Freshness (tiny model): the time from a solved ticket's samples reaching `training.samples` to its
   tenant's refreshed adapter being published on `adapters.published`, through a real broker and the real
   worker, against the refresh's training step alone as the baseline (the rest is holdout scoring of
   challenger and champion, the registry and Kafka). The promotion margin is opened up here so the
   refresh is always promoted: this measures the pipeline, not the model.

Everything is local: a tansu broker (memory storage) child process and a temp data dir.
    .venv/bin/python bench/train.py [--base DIR] [--business Hotels_2] [--samples 160] [--threads 2]
                                    [--ablations] [--no-freshness]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from clonedesk.core.base_model import TINY, ensure_base_model
from clonedesk.core.kafka import decode, encode, ensure_topics, make_consumer, make_producer, wait_for_broker
from clonedesk.core.settings import Settings
from clonedesk.core.domain.topics import ADAPTERS_PUBLISHED, TRAINING_SAMPLES, all_topic_specs, message_key
from clonedesk.stack.infra import tansu_binary
from clonedesk.trainer.adapters.lora import LoraTrainingConfig, load_base, lora_layers, set_threads
from clonedesk.core.sgd import find_sgd_dir
from clonedesk.ingest.adapters.sgd_history import tenant_samples
from clonedesk.trainer.adapters.training_batches import IGNORE, collate, encode_sample, make_batches
from clonedesk.trainer.adapters.training_loop import train_on_batches
from clonedesk.trainer.settings import TrainerSettings
from clonedesk.core.domain.holdout import is_holdout
from clonedesk.trainer.entrypoints.worker import TrainerWorker
from clonedesk.v1 import adapters_pb2

console = Console(width=140)
HOLDOUT_FRACTION = 0.2

# The loop variants, as changes to the trainer's default config. "naive" is the starting point.
NAIVE = dict(layers_to_train=0, target_only_logits=False, frozen_prefix=False, cache_frozen_prefix=False,
             length_bucketing=False, mixed_precision="no", final_lr_fraction=1.0, max_grad_norm=0.0)
VARIANTS = {
    "naive": NAIVE,
    "ours": {},
}
ABLATIONS = {
    "naive + target-only logits": {**NAIVE, "target_only_logits": True},
    "ours, float32 (no bf16)": {"mixed_precision": "no"},
    "ours + LoRA on the top 20 layers (prefix cached)": {"layers_to_train": 20, "learning_rate": 2e-3},
    "ours + top 20 layers, prefix not cached": {"layers_to_train": 20, "learning_rate": 2e-3,
                                                "cache_frozen_prefix": False},
    "ours + length bucketing": {"length_bucketing": True},
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def split_samples(business: str, count: int):
    samples = tenant_samples(find_sgd_dir() / f"train_{business}.jsonl", "bench-" + business.lower())
    trainable = [s for s in samples if not is_holdout(s.ticket_id, HOLDOUT_FRACTION)]
    held_out = [s for s in samples if is_holdout(s.ticket_id, HOLDOUT_FRACTION)]
    return trainable[:count], held_out[:64]


def naive_loop(model, batches, learning_rate: float) -> tuple[int, list[float]]:
    """The plainest peft + torch loop: the model's own loss over every position, AdamW."""
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=learning_rate)
    model.train()
    tokens, losses = 0, []
    for batch in batches:
        loss = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, labels=batch.labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        tokens += batch.tokens
        losses.append(loss.item())
    model.eval()
    return tokens, losses


def held_out_loss(model, tokenizer, samples, config: LoraTrainingConfig) -> float:
    """Mean cross-entropy per target token on held-out samples (the model's own full forward)."""
    encoded = [e for s in samples for e in encode_sample(tokenizer, s, config.max_length, config.context_turns,
                                                         config.action_results)]
    total, count = 0.0, 0
    with torch.inference_mode():
        for start in range(0, len(encoded), 8):
            batch = collate(encoded, range(start, min(start + 8, len(encoded))), tokenizer.pad_token_id)
            loss = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, labels=batch.labels).loss
            targets = int((batch.labels[:, 1:] != IGNORE).sum())
            total, count = total + loss.item() * targets, count + targets
    return total / max(1, count)


def run_variant(base: str, business: str, count: int, overrides: dict, threads: int) -> dict:
    """One variant, in this process: train, then the held-out loss. Returns its figures."""
    from peft import LoraConfig, get_peft_model

    set_threads(threads)
    # The naive loop's objective (every target token alike): the loops are compared on the same loss.
    config = dataclasses.replace(LoraTrainingConfig(), decision_weight=1.0, **overrides)
    trainable, held_out = split_samples(business, count)
    torch.manual_seed(config.seed)
    model, tokenizer = load_base(base)
    model = get_peft_model(model, LoraConfig(
        r=config.rank, lora_alpha=config.alpha, target_modules=list(config.target_modules), task_type="CAUSAL_LM",
        layers_to_transform=lora_layers(model.config, config.layers_to_train)))
    batches = make_batches(tokenizer, trainable, config)
    started = time.perf_counter()
    if overrides is NAIVE:
        tokens, losses = naive_loop(model, batches, config.learning_rate)
    else:
        tokens, losses = train_on_batches(model, batches, config)
    seconds = time.perf_counter() - started
    return {"tokens_per_s": tokens / seconds, "seconds": seconds, "steps": len(batches), "tokens": tokens,
            "padded_tokens": sum(b.input_ids.numel() for b in batches), "samples": len(trainable),
            "train_loss": sum(losses[-3:]) / len(losses[-3:]),
            "held_out_loss": held_out_loss(model, tokenizer, held_out, config),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def variant_in_child(name: str, args) -> dict:
    """Each variant in a fresh process: its peak memory is its own, and no warm cache helps the next."""
    out = subprocess.run([sys.executable, __file__, "--variant", name, "--base", args.base, "--business",
                          args.business, "--samples", str(args.samples), "--threads", str(args.threads)],
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"variant {name} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def throughput_table(args) -> None:
    names = list(VARIANTS) + (list(ABLATIONS) if args.ablations else [])
    results = {}
    for name in names:
        console.print(f"training: {name}…")
        results[name] = variant_in_child(name, args)
    naive, ours = results["naive"], results["ours"]
    table = Table(title=f"training loop on {Path(args.base).name}, {ours['samples']} samples of {args.business},"
                        f" {ours['steps']} steps, {args.threads} threads")
    for column in ("loop", "tokens/s", "vs naive", "held-out loss", "train loss", "padding", "peak RSS MB", "s"):
        table.add_column(column, justify="left" if column == "loop" else "right")
    for name in names:
        r = results[name]
        table.add_row(name, f"{r['tokens_per_s']:,.0f}", f"{r['tokens_per_s'] / naive['tokens_per_s']:.2f}x",
                      f"{r['held_out_loss']:.3f}", f"{r['train_loss']:.3f}",
                      f"{1 - r['tokens'] / r['padded_tokens']:.0%}", f"{r['peak_rss_mb']:,.0f}", f"{r['seconds']:.0f}")
    console.print(table)
    console.print(f"speed-up over the naive loop: {ours['tokens_per_s'] / naive['tokens_per_s']:.2f}x")
    console.print(f"held-out loss after the same {ours['samples']} samples: ours {ours['held_out_loss']:.3f},"
                  f" naive {naive['held_out_loss']:.3f}"
                  f" ({'no worse' if ours['held_out_loss'] <= naive['held_out_loss'] + 1e-3 else 'WORSE'})")


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
    parser.add_argument("--base", help="base model dir or id (default: the product's default, SmolLM2)")
    parser.add_argument("--business", default="Hotels_2")
    parser.add_argument("--samples", type=int, default=160, help="training samples per variant")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ablations", action="store_true", help="a row per loop choice as well")
    parser.add_argument("--no-freshness", action="store_true")
    parser.add_argument("--variant", help=argparse.SUPPRESS)  # a child process: one variant, JSON out
    parser.add_argument("--dialogues", type=int, default=40, help="freshness: dialogues of Banks_1")
    args = parser.parse_args()
    if find_sgd_dir() is None:
        raise SystemExit("no SGD dialogues found (../shared/datasets/sgd)")
    if args.variant:
        overrides = {**VARIANTS, **ABLATIONS}[args.variant]
        print(json.dumps(run_variant(args.base, args.business, args.samples, overrides, args.threads)))
        return
    with tempfile.TemporaryDirectory(prefix="clonedesk-bench-") as tmp:
        tmp = Path(tmp)
        if args.base is None:
            # The product's default base model, imported once into the repository's data dir.
            args.base = ensure_base_model(Settings(data_dir=Path(os.environ.get("CLONEDESK_DATA_DIR", ".clonedesk"))),
                                          progress=True)
        throughput_table(args)
        if args.no_freshness:
            return
        set_threads(1)
        tiny = ensure_base_model(Settings(data_dir=tmp / "data", base_model=TINY))
        samples = tenant_samples(find_sgd_dir() / "train_Banks_1.jsonl", "bench-bank", limit=args.dialogues)
        tickets = list(dict.fromkeys(s.ticket_id for s in samples))
        cut = set(tickets[: max(1, len(tickets) - 3)])
        first = [s for s in samples if s.ticket_id in cut]
        refresh = [s for s in samples if s.ticket_id not in cut]  # the last three solved tickets
        latency, run_seconds = asyncio.run(freshness(tiny, first, refresh, tmp))
    table = Table(title="freshness (tiny model, 1 torch thread)")
    for column in ("measure", "ours", "baseline", "ratio"):
        table.add_column(column, justify="right" if column != "measure" else "left")
    table.add_row("solved ticket -> refreshed adapter published (s)", f"{latency:.1f}",
                  f"{run_seconds:.1f} (its training step alone)", f"{latency / run_seconds:.2f}x")
    console.print(table)


if __name__ == "__main__":
    main()
