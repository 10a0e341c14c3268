"""The tiny offline base model, for tests: a small Llama-style one built on this machine in seconds.

Which base model a service uses is decided in `clonedesk.core.base_model` (`ensure_base_model`); this
builder makes the one selected by `CLONEDESK_BASE_MODEL=tiny` (and the tests' own small models):

    from clonedesk.core.tiny_model import build_base_model
    path = build_base_model(out_dir)          # or: clonedesk base-model build --tiny --out DIR

The built model is a normal HF directory: `LlamaForCausalLM` (hidden 128, 2 layers, vocab 2048) and a
byte-level BPE tokenizer trained with `tokenizers`, with a chat template:

    <|system|>\\n{content}<|end|>\\n   <|user|>\\n{content}<|end|>\\n   <|assistant|>\\n{content}<|end|>\\n

`add_generation_prompt=True` appends `<|assistant|>\\n`. `<|end|>` is the eos token (generation stops at
the end of the agent's turn), `<|pad|>` the pad token. The tokenizer adds no special tokens of its own,
so a prompt is exactly `tokenizer.apply_chat_template(messages, add_generation_prompt=True)`.

Pre-training is brief next-token prediction on conversation text (the SGD dialogues found beside the
project by default), only on tickets in the upper half of the holdout hash buckets so no tenant's
holdout was ever seen. A fixed seed gives the same tokenizer and the same weights.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from pathlib import Path
from typing import Iterable

from clonedesk.core.domain.holdout import may_be_pretrained_on
from clonedesk.core.model_dirs import IDENTITY_FILE, TINY, staging_dir, swap_into_place
from clonedesk.core.progress import progress_bar

log = logging.getLogger(__name__)

# The LoRA recipe of the tiny model (2 layers, 128 wide), which the trainer's defaults (made for a real
# 30-layer model) under-train: a tenth of its rank learns too slowly at the real model's rate. Tests and
# the quick demo set it through the trainer's CLONEDESK_TRAINER_* settings.
TINY_MODEL_RECIPE = dict(lora_rank=32, lora_alpha=64, lora_layers=0, learning_rate=1e-2, final_lr_fraction=0.05,
                         epochs=3.0, max_length=192, mixed_precision="no")


def recipe_env(recipe: dict) -> dict[str, str]:
    """A recipe as the CLONEDESK_TRAINER_* variables a trainer process reads."""
    return {f"CLONEDESK_TRAINER_{name.upper()}": str(value) for name, value in recipe.items()}

PAD, END, SYSTEM, USER, ASSISTANT = "<|pad|>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>"
SPECIAL_TOKENS = [PAD, END, SYSTEM, USER, ASSISTANT]

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + '<|end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)

DEFAULT_STEPS = 300
DEFAULT_VOCAB = 2048
DEFAULT_DIALOGUES_PER_FILE = 120
BLOCK_TOKENS = 128
BATCH_BLOCKS = 16


def render_conversation(turns: Iterable[tuple[str, str]]) -> str:
    """Conversation text in the chat template's shape: (role, text) with role user/assistant/system."""
    return "".join(f"<|{role}|>\n{text}{END}\n" for role, text in turns)


def default_texts(dialogues_per_file: int = DEFAULT_DIALOGUES_PER_FILE) -> list[str]:
    """Pre-training text: SGD dialogues outside every holdout (hash bucket >= 0.5), in file order."""
    from clonedesk.core.sgd import find_sgd_dir, read_dialogues, sgd_files

    sgd_dir = find_sgd_dir()
    if sgd_dir is None:
        raise FileNotFoundError("no SGD dialogues found (../shared/datasets/sgd or data/sgd):"
                                " pass texts to build_base_model")
    texts = []
    for path in sgd_files(sgd_dir):
        taken = 0
        for dialogue in read_dialogues(path):
            if taken >= dialogues_per_file:
                break
            if not may_be_pretrained_on(dialogue["dialogue_id"]):
                continue
            turns = [("user" if t["speaker"] == "USER" else "assistant", t["utterance"])
                     for t in dialogue["turns"]]
            texts.append(render_conversation(turns))
            taken += 1
    return texts


def _train_tokenizer(texts: list[str], vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    core.train_from_iterator(texts, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, eos_token=END, pad_token=PAD,
                                        additional_special_tokens=[SYSTEM, USER, ASSISTANT])
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.padding_side = "left"  # generation pads on the left; training builds its own batches
    return tokenizer


def _model_config(tokenizer, layers: int, hidden: int):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=hidden * 3, num_hidden_layers=layers,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024, rms_norm_eps=1e-5,
        tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None, use_cache=True,
    )


def _blocks(token_stream: list[int], block: int) -> list[list[int]]:
    return [token_stream[i:i + block] for i in range(0, len(token_stream) - block + 1, block)]


def build_base_model(out_dir: Path, texts: Iterable[str] | None = None, *, seed: int = 0,
                     steps: int = DEFAULT_STEPS, progress: bool = True, vocab_size: int = DEFAULT_VOCAB,
                     layers: int = 2, hidden: int = 128, learning_rate: float = 5e-3,
                     batch_blocks: int = BATCH_BLOCKS) -> Path:
    """Build the small base model offline into `out_dir` (replaced if present) and return it.

    `texts` are conversation texts for the tokenizer and pre-training (default: `default_texts()`).
    Deterministic for a fixed seed and the same texts; about half a minute on one thread.
    """
    import torch
    from transformers import LlamaForCausalLM

    started = time.monotonic()
    out_dir = Path(out_dir)
    texts = list(texts) if texts is not None else default_texts()
    if not texts:
        raise ValueError("no text to build a base model from")
    random.seed(seed)
    torch.manual_seed(seed)
    tokenizer = _train_tokenizer(texts, vocab_size)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(_model_config(tokenizer, layers, hidden))

    stream: list[int] = []
    for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]:
        stream.extend(ids)
    blocks = _blocks(stream, BLOCK_TOKENS)
    if not blocks:
        raise ValueError("the texts are too short to pre-train on")
    order = random.Random(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / 20) * max(0.1, 1 - step / max(1, steps)))
    model.train()
    bar = progress_bar(range(steps), description="pre-training the tiny base model", unit="step", enabled=progress)
    loss_value = float("nan")
    for _ in bar:
        batch = torch.tensor([blocks[order.randrange(len(blocks))] for _ in range(batch_blocks)])
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        loss_value = loss.item()
        bar.set_postfix(loss=f"{loss_value:.3f}")
    model.eval()

    staging = staging_dir(out_dir, "building")
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    identity = {"kind": TINY, "builder": "clonedesk", "layers": layers, "hidden": hidden, "seed": seed,
                "steps": steps, "texts": len(texts),
                "text_sha256": hashlib.sha256("\x00".join(texts).encode()).hexdigest(),
                "final_loss": round(loss_value, 4), "seconds": round(time.monotonic() - started, 1)}
    (staging / IDENTITY_FILE).write_text(json.dumps(identity, indent=2))
    swap_into_place(staging, out_dir)
    log.info("base model built", extra={"path": str(out_dir), **identity})
    return out_dir
