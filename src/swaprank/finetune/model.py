"""The base model: a cross-encoder to keep training, or an encoder that gets a fresh 1-label head.

``--base`` is a local directory, a ``cross-encoder:`` config string, or a hub id (when a hub is
reachable). A directory whose ``config.json`` declares a ``...ForSequenceClassification``
architecture is a cross-encoder; anything else (a BERT encoder, a sentence-transformers bi-encoder
such as all-MiniLM-L6-v2) is an encoder: its weights are loaded under a new, randomly initialised
1-label classification head and written once to ``<out>/base-init`` so the run (and a resume) starts
from the same weights, and the "before" row of the report has a model to score.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from swaprank.finetune.errors import BaseModelNotFoundError, FinetuneError


@dataclass(frozen=True)
class BaseModel:
    path: str  # what CrossEncoder loads (a directory, or a hub id)
    kind: str  # "cross-encoder" or "encoder (new 1-label head)"
    source: str  # what the user passed


def _strip_spec(base: str) -> str:
    if base.startswith(("cross-encoder:", "ce:")):
        from swaprank.config import parse_spec

        spec = parse_spec(base)
        if spec.backend != "cross-encoder":
            raise FinetuneError(f"--base must be a cross-encoder spec or a path, got backend {spec.backend!r}")
        return spec.model
    return base


def _transformer_dir(folder: Path) -> Path:
    """A sentence-transformers folder keeps its Transformer module at the root or in a subfolder."""
    modules = folder / "modules.json"
    if modules.is_file() and not (folder / "config.json").is_file():
        for module in json.loads(modules.read_text(encoding="utf-8")):
            if str(module.get("type", "")).endswith("Transformer"):
                return folder / module.get("path", "")
    return folder


def _is_cross_encoder(config_file: Path) -> bool:
    config = json.loads(config_file.read_text(encoding="utf-8"))
    architectures = config.get("architectures") or []
    return any(str(a).endswith("ForSequenceClassification") for a in architectures)


def resolve_base(base: str, workdir: Path, *, seed: int = 0) -> BaseModel:
    """Find the base model and, for an encoder, write the cross-encoder it starts from."""
    name = _strip_spec(base.strip())
    if not name:
        raise BaseModelNotFoundError("--base is empty")
    path = Path(name).expanduser()
    looks_local = path.exists() or name.startswith((".", "/", "~")) or path.suffix != "" or name.count("/") > 1
    if not path.exists():
        if looks_local:
            raise BaseModelNotFoundError(f"--base {name}: no such directory")
        return BaseModel(path=name, kind="cross-encoder (hub id)", source=base)  # the loader reports what is wrong
    if not path.is_dir():
        raise BaseModelNotFoundError(f"--base {name} is a file; expected a model directory")
    folder = _transformer_dir(path)
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise BaseModelNotFoundError(f"--base {name} has no config.json: not a transformers model directory")
    if _is_cross_encoder(config_file):
        return BaseModel(path=str(path), kind="cross-encoder", source=base)
    target = workdir / "base-init"
    if not (target / "config.json").is_file():
        _head_on_encoder(folder, target, seed)
    return BaseModel(path=str(target), kind="encoder (new 1-label head)", source=base)


def _head_on_encoder(encoder_dir: Path, target: Path, seed: int) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    torch.manual_seed(seed)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "classifier.* newly initialised" is the point, not a warning
    try:
        model = AutoModelForSequenceClassification.from_pretrained(str(encoder_dir), num_labels=1)
        tokenizer = AutoTokenizer.from_pretrained(str(encoder_dir))
    except (OSError, ValueError) as exc:
        raise BaseModelNotFoundError(f"--base {encoder_dir}: cannot load it as an encoder ({exc})") from exc
    finally:
        hf_logging.set_verbosity(verbosity)
    tmp = target.with_name(target.name + ".tmp")
    model.save_pretrained(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    tmp.replace(target)


def load_cross_encoder(path: str, max_length: int, seed: int = 0):  # type: ignore[no-untyped-def]
    """A sentence-transformers ``CrossEncoder`` with one output, on CPU unless CUDA is present."""
    import torch
    from sentence_transformers import CrossEncoder

    torch.manual_seed(seed)
    try:
        # Identity: the saved model outputs logits, as the MS MARCO cross-encoders do; swaprank's sigmoid
        # maps them to [0, 1] on every runtime (torch and the exported fast path) the same way.
        model = CrossEncoder(path, num_labels=1, max_length=max_length, activation_fn=torch.nn.Identity())
    except OSError as exc:
        raise BaseModelNotFoundError(f"--base {path}: {exc}") from exc
    if model.num_labels != 1:
        raise FinetuneError(f"--base {path} has {model.num_labels} output labels; a reranker needs exactly 1")
    return model
