"""Trainer on an accelerator: the trainer's own LoRA run (`train_adapter`) on CUDA against the same run
on the CPU, in the same process, on the same samples, base model and config: tokens/s each and the
ratio, for the demo's small base model and for a bigger one of the same shape. Then the adapter trained
on the GPU is scored on the CPU (where a CPU resolver would serve it) against the CPU-trained one on the
same held-out turns: the adapter files move between devices and learn the same thing.

    python bench/train_device.py [--dialogues 60] [--steps 120] [--cpu-threads 8]

Needs a CUDA device (CLONEDESK_TRAINER_DEVICE picks the devices; the trainer itself picks cuda when
present). Everything is offline: base models built from data/sgd with fixed seeds.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from clonedesk.core.tiny_model import build_base_model, default_texts  # noqa: E402
from clonedesk.trainer.adapters.evaluation import evaluation_sample, score_model  # noqa: E402
from clonedesk.trainer.adapters.lora import LoraTrainingConfig, train_adapter  # noqa: E402
from clonedesk.core.sgd import find_sgd_dir  # noqa: E402
from clonedesk.ingest.adapters.sgd_history import tenant_samples  # noqa: E402
from clonedesk.core.domain.holdout import is_holdout  # noqa: E402
from clonedesk.trainer.domain.metrics import compute_metrics  # noqa: E402

console = Console(width=140)


def on_device(device: str):
    """Run the trainer's code on `device` (the variable training_device() reads)."""
    os.environ["CLONEDESK_TRAINER_DEVICE"] = device


def train(base: Path, samples, out: Path, device: str, config: LoraTrainingConfig):
    on_device(device)
    if device.startswith("cuda"):
        torch.cuda.synchronize()  # nothing earlier still running on the GPU counts against this run
    return train_adapter(str(base), samples, out, config=config)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dialogues", type=int, default=60)
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--cpu-threads", type=int, default=8)
    parser.add_argument("--eval-turns", type=int, default=40)
    parser.add_argument("--bigger-steps", type=int, default=60, help="pre-training steps of the bigger model")
    parser.add_argument("--accelerator", default="cuda", help="the device compared with the CPU ('cpu' checks"
                                                              " this script itself on a machine without one)")
    args = parser.parse_args()
    accelerator = args.accelerator
    if accelerator.startswith("cuda") and not torch.cuda.is_available():
        console.print("no CUDA device here: this benchmark compares the trainer on a GPU with the CPU (skipped)")
        return
    torch.set_num_threads(args.cpu_threads)
    name = torch.cuda.get_device_name(0) if accelerator.startswith("cuda") else accelerator
    console.print(f"accelerator {name}; torch {torch.__version__}; CPU threads {args.cpu_threads}")

    sgd = find_sgd_dir()
    samples = list(tenant_samples(sgd / "train_Banks_1.jsonl", "banks", limit=args.dialogues))
    trainable = [s for s in samples if not is_holdout(s.ticket_id, 0.1)]
    holdout = evaluation_sample([s for s in samples if is_holdout(s.ticket_id, 0.1)], args.eval_turns)
    texts = default_texts()
    shapes = {"small (demo: 2 layers, 128 wide)": dict(layers=2, hidden=128, steps=None),
              "bigger (8 layers, 768 wide)": dict(layers=8, hidden=768, steps=args.bigger_steps)}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for label, shape in shapes.items():
            started = time.monotonic()
            on_device("cpu")
            extra = {"steps": shape["steps"]} if shape["steps"] else {}
            base = build_base_model(root / label.split()[0], texts, seed=0, progress=False,
                                    layers=shape["layers"], hidden=shape["hidden"], **extra)
            console.print(f"{label}: base model built in {time.monotonic() - started:.0f}s")
            config = LoraTrainingConfig(max_steps=args.steps, epochs=10, batch_size=8, max_length=160, seed=0)
            # Warm-up (CUDA context, kernels) outside the timed runs.
            train(base, trainable[:16], root / "warm", accelerator, LoraTrainingConfig(max_steps=3, batch_size=8))
            gpu = train(base, trainable, root / f"{label.split()[0]}-gpu", accelerator, config)
            cpu = train(base, trainable, root / f"{label.split()[0]}-cpu", "cpu", config)
            row = {"label": label, "gpu": gpu, "cpu": cpu}
            if shape["steps"] is None:  # the demo's model: the adapters' quality, both scored on the CPU
                on_device("cpu")
                row["gpu_on_cpu"] = compute_metrics(score_model(str(base), root / "small-gpu", holdout))
                row["cpu_on_cpu"] = compute_metrics(score_model(str(base), root / "small-cpu", holdout))
                on_device(accelerator)
                row["gpu_on_gpu"] = compute_metrics(score_model(str(base), root / "small-gpu", holdout))
            rows.append(row)

    table = Table("base model", "steps", "tokens", "GPU tokens/s", "CPU tokens/s", "GPU / CPU",
                  "final loss GPU", "final loss CPU", title="trainer LoRA run: CUDA vs CPU (same run)")
    for row in rows:
        gpu, cpu = row["gpu"], row["cpu"]
        table.add_row(row["label"], str(gpu.steps), str(gpu.tokens), f"{gpu.tokens_per_second:,.0f}",
                      f"{cpu.tokens_per_second:,.0f}", f"{gpu.tokens_per_second / cpu.tokens_per_second:.2f}x",
                      f"{gpu.final_loss:.3f}", f"{cpu.final_loss:.3f}")
    console.print(table)
    small = rows[0]
    quality = Table("adapter", "scored on", "decision accuracy", "reply chrF", "held-out turns",
                    title="the small model's adapters on the same held-out turns")
    for name, key, where in (("trained on GPU", "gpu_on_cpu", "CPU"), ("trained on GPU", "gpu_on_gpu", "GPU"),
                             ("trained on CPU", "cpu_on_cpu", "CPU")):
        metrics = small[key]
        quality.add_row(name, where, _share(metrics.decision_accuracy),
                        "—" if metrics.reply_chrf is None else f"{metrics.reply_chrf:.1f}", str(metrics.turns))
    console.print(quality)


def _share(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


if __name__ == "__main__":
    main()
