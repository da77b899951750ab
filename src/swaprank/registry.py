"""Backend name -> factory, plus the process-wide cache of live backends.

Built-in backends are named here as import strings and imported only when first used, so
``import swaprank`` never pulls in torch or a vendor SDK. Third-party backends arrive through
``register_backend`` or the ``swaprank.backends`` entry-point group.

The instance cache is what makes two ``Reranker`` objects (say, one per request handler) share a
single loaded cross-encoder: loading MiniLM takes seconds and ~100 MB, so loading it once per
process matters, including when several threads hit a cold cache at the same moment.
"""

from __future__ import annotations

import hashlib
import importlib
import threading
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from swaprank.types import ConfigError

if TYPE_CHECKING:
    from pydantic import SecretStr

    from swaprank.backends.base import Backend
    from swaprank.specs import BackendSpec

ENTRY_POINT_GROUP = "swaprank.backends"

BackendFactory = Callable[..., "Backend"]

_BUILTIN: dict[str, str] = {
    "cross-encoder": "swaprank.backends.cross_encoder:CrossEncoderBackend",
    "colbert": "swaprank.backends.colbert:ColBERTBackend",
    "cohere": "swaprank.backends.cohere:CohereBackend",
    "voyage": "swaprank.backends.voyage:VoyageBackend",
    "jina": "swaprank.backends.jina:JinaBackend",
    "tei": "swaprank.backends.tei:TEIBackend",
    "vllm": "swaprank.backends.vllm:VLLMBackend",
    "llamacpp": "swaprank.backends.llamacpp:LlamaCppBackend",
    "infinity": "swaprank.backends.infinity:InfinityBackend",
    "pinecone": "swaprank.backends.pinecone:PineconeBackend",
    "zeroentropy": "swaprank.backends.zeroentropy:ZeroEntropyBackend",
    "mixedbread": "swaprank.backends.mixedbread:MixedbreadBackend",
    "nvidia": "swaprank.backends.nvidia:NvidiaBackend",
    "bedrock": "swaprank.backends.bedrock:BedrockBackend",
    "llm": "swaprank.backends.llm:LLMBackend",
}
_ALIASES: dict[str, str] = {"ce": "cross-encoder", "text-embeddings-inference": "tei", "llama-cpp": "llamacpp"}

_registered: dict[str, BackendFactory] = {}
_registry_lock = threading.Lock()

_instances: dict[tuple[Any, ...], Backend] = {}
_load_locks: dict[tuple[Any, ...], threading.Lock] = {}
_cache_lock = threading.Lock()


def register_backend(name: str, factory: BackendFactory, *, replace: bool = False) -> None:
    """Make ``name:<model>`` config strings build backends with ``factory``.

    ``factory(spec, api_key=None)`` must return an object with ``score`` (and optionally
    ``ascore`` / ``score_many``); see ``swaprank.backends.base.BaseBackend``. An ``options``
    mapping of ``swaprank.specs.Option`` on the factory makes its options typed and validated.
    """
    if not isinstance(name, str) or not name or ":" in name or "|" in name or "?" in name:
        raise ConfigError(f"backend name must be a non-empty string without ':|?', got {name!r}")
    if not callable(factory):
        raise ConfigError(f"factory for backend {name!r} must be callable")
    with _registry_lock:
        if not replace and (name in _registered or name in _BUILTIN or name in _ALIASES):
            raise ConfigError(f"backend {name!r} is already registered; pass replace=True")
        _registered[name] = factory


def _entry_point_names() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available_backends() -> list[str]:
    """Every backend name a config string may start with (aliases excluded)."""
    return sorted(set(_BUILTIN) | set(_registered) | set(_entry_point_names()))


def canonical_name(name: str) -> str:
    name = name.strip().lower()
    return _ALIASES.get(name, name)


def _import_string(target: str) -> Any:
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attr)


def backend_factory(name: str) -> BackendFactory:
    """The factory for a backend name, or ConfigError listing the valid names."""
    name = canonical_name(name)
    if name in _registered:
        return _registered[name]
    if name in _BUILTIN:
        factory: BackendFactory = _import_string(_BUILTIN[name])
        return factory
    eps = _entry_point_names()
    if name in eps:
        loaded: BackendFactory = eps[name].load()
        with _registry_lock:
            _registered.setdefault(name, loaded)
        return loaded
    aliases = ", ".join(f"{a}={b}" for a, b in sorted(_ALIASES.items()))
    raise ConfigError(
        f"unknown backend {name!r}; valid backends: {', '.join(available_backends())} "
        f"(aliases: {aliases})"
    )


def _key_fingerprint(api_key: SecretStr | str | None) -> str | None:
    if api_key is None:
        return None
    raw = api_key if isinstance(api_key, str) else api_key.get_secret_value()
    return hashlib.sha256(raw.encode()).hexdigest()


def get_backend(spec: BackendSpec, *, api_key: SecretStr | str | None = None) -> Backend:
    """Return the live backend for ``spec``, building it at most once per process.

    The cache key holds a hash of the API key, never the key, so two tenants with different keys
    get different clients while a shared model is still loaded once.
    """
    key = (spec, _key_fingerprint(api_key))
    backend = _instances.get(key)
    if backend is not None:
        return backend
    with _cache_lock:
        lock = _load_locks.setdefault(key, threading.Lock())
    with lock:  # one loader per key; the others wait and reuse its result
        backend = _instances.get(key)
        if backend is None:
            factory = backend_factory(spec.backend)
            backend = factory(spec, api_key=api_key)
            _instances[key] = backend
    return backend


def clear_cache() -> None:
    """Forget every cached backend (tests, or freeing a model's memory)."""
    with _cache_lock:
        _instances.clear()
        _load_locks.clear()
