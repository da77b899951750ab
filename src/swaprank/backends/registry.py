"""Backend name -> factory, and the live backends built from it, as one object: ``Registry``.

Built-in backends are named here as import strings and imported only when first used, so
``import swaprank`` never pulls in torch or a vendor SDK. Third-party backends arrive through
``register`` (``swaprank.register_backend`` for the process-wide registry) or the
``swaprank.backends`` entry-point group.

The live backends are shared: two ``Reranker`` objects on the same registry (say, one per request
handler) share a single loaded cross-encoder, because loading MiniLM takes seconds and ~100 MB.
Each Reranker *acquires* the backends it uses and *releases* them when it is closed; the last
release closes the backend (its threads and clients). ``Registry.close()`` closes everything.

``Reranker(registry=Registry())`` gives a Reranker its own plugins and its own live backends,
invisible to every other registry (tests use one per test instead of editing module state).
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from swaprank.backends.contract import Backend, ForeignBackend, missing_methods
from swaprank.redaction import show_word
from swaprank.types import ConfigError

if TYPE_CHECKING:
    from pydantic import SecretStr

    from swaprank.specs import BackendSpec, Option

ENTRY_POINT_GROUP = "swaprank.backends"

BackendFactory = Callable[..., Any]

BUILTIN: Mapping[str, str] = {
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
ALIASES: Mapping[str, str] = {"ce": "cross-encoder", "text-embeddings-inference": "tei", "llama-cpp": "llamacpp"}


@dataclass(frozen=True)
class Registration:
    """A backend name's factory and what is known of it before one is built.

    For a ``Backend`` subclass these come from its class attributes; a plain factory function
    declares them when registered (``options=None`` accepts any option, untyped).
    """

    name: str
    factory: BackendFactory
    options: Mapping[str, Option] | None = None
    default_model: str | None = None
    uses_api_key: bool = True
    local: bool = False

    @classmethod
    def of(cls, name: str, factory: BackendFactory, *, options: Mapping[str, Option] | None = None,
           default_model: str | None = None, uses_api_key: bool | None = None,
           local: bool | None = None) -> Registration:
        if isinstance(factory, type) and issubclass(factory, Backend):
            return cls(name, factory, factory.options if options is None else options,
                       default_model or factory.default_model,
                       factory.uses_api_key if uses_api_key is None else uses_api_key,
                       factory.local if local is None else local)
        return cls(name, factory, options, default_model, True if uses_api_key is None else uses_api_key,
                   bool(local))

    def check(self, spec: BackendSpec) -> None:
        """The backend's own refusals of a spec that need no model (``Backend.check_spec``), run when a
        Reranker (or an adapter) is built: a missing model directory fails there, not at first use.
        Not in ``parse_spec``, which stays a pure reading of the string (a spec may be parsed on one
        machine and served on another)."""
        if isinstance(self.factory, type) and issubclass(self.factory, Backend):
            self.factory.check_spec(spec)

    def build(self, spec: BackendSpec, api_key: SecretStr | str | None) -> Backend:
        """Call the factory and hold what it made to the contract (wrapping a duck-typed scorer)."""
        made = self.factory(spec, api_key=api_key)
        if missing_methods(type(made)):
            raise ConfigError(f"backend {self.name!r} built an object of type {type(made).__name__} that implements "
                              "neither score nor score_many; a backend must implement one of them "
                              "(see swaprank.backends.Backend)")
        if not isinstance(made, Backend):
            made = ForeignBackend(spec, made)
        return made


class Registry:
    """Which backend names exist, and the live backends built from them (shared, reference-counted)."""

    def __init__(self, *, builtins: bool = True, plugins: bool = True) -> None:
        self._builtin = dict(BUILTIN) if builtins else {}
        self._entry_points = plugins
        self._registered: dict[str, Registration] = {}
        self._lock = threading.RLock()
        self._live: dict[tuple[Any, ...], Backend] = {}
        self._users: dict[int, int] = {}  # id(backend) -> how many open Rerankers hold it
        self._load_locks: dict[tuple[Any, ...], threading.Lock] = {}

    # ------------------------------------------------------------------ names

    def register(self, name: str, factory: BackendFactory, *, replace: bool = False,
                 options: Mapping[str, Option] | None = None, default_model: str | None = None,
                 uses_api_key: bool | None = None, local: bool | None = None) -> None:
        """Make ``name:<model>`` config strings build backends with ``factory``.

        ``factory(spec, api_key=None)`` returns a ``swaprank.backends.Backend`` (or any object with
        ``score`` or ``score_many``). A class is checked now: one that implements neither is
        refused here, not at the first query. ``options`` / ``default_model`` / ``uses_api_key`` /
        ``local`` describe a factory function; a Backend subclass declares them as class attributes.
        """
        if not isinstance(name, str) or not name or any(c in name for c in ":|?&=") or name != name.strip():
            raise ConfigError(f"backend name must be a non-empty string without ':|?&=' or spaces, got {name!r}")
        if not callable(factory):
            raise ConfigError(f"factory for backend {name!r} must be callable")
        if isinstance(factory, type):
            lacking = missing_methods(factory)
            if lacking:
                raise ConfigError(f"backend class {factory.__name__} for {name!r} implements neither score nor "
                                  "score_many; implement one (see swaprank.backends.Backend)")
        with self._lock:
            if not replace and (name in self._registered or name in self._builtin or name in ALIASES):
                raise ConfigError(f"backend {name!r} is already registered; pass replace=True")
            self._registered[name] = Registration.of(name, factory, options=options, default_model=default_model,
                                                     uses_api_key=uses_api_key, local=local)

    def unregister(self, name: str) -> None:
        with self._lock:
            self._registered.pop(name, None)

    def names(self) -> list[str]:
        """Every backend name a config string may start with (aliases excluded)."""
        return sorted(set(self._builtin) | set(self._registered) | set(self._plugin_entry_points()))

    @staticmethod
    def canonical_name(name: str) -> str:
        name = name.strip().lower()
        return ALIASES.get(name, name)

    def registration(self, name: str) -> Registration:
        """The registration for a backend name, or ConfigError suggesting the closest valid name."""
        given, name = name, self.canonical_name(name)
        with self._lock:
            found = self._registered.get(name)
        if found is not None:
            return found
        if name in self._builtin:
            module_name, _, attr = self._builtin[name].partition(":")
            return Registration.of(name, getattr(importlib.import_module(module_name), attr))
        eps = self._plugin_entry_points()
        if name in eps:
            loaded = Registration.of(name, eps[name].load())
            with self._lock:
                return self._registered.setdefault(name, loaded)
        raise ConfigError(f"unknown backend {show_word(given.strip())!r}; {self.suggest(name)}")

    def suggest(self, name: str) -> str:
        """"did you mean ...?" for an unknown backend name (aliases included), then every valid name."""
        aliases = ", ".join(f"{a}={b}" for a, b in sorted(ALIASES.items()))
        names = self.names()
        close = difflib.get_close_matches(name.strip().lower(), [*names, *ALIASES], n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return f"{hint}valid backends: {', '.join(names)} (aliases: {aliases})"

    def _plugin_entry_points(self) -> dict[str, Any]:
        if not self._entry_points:
            return {}
        return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}

    # ------------------------------------------------------------------ live backends

    def acquire(self, spec: BackendSpec, *, api_key: SecretStr | str | None = None) -> Backend:
        """The live backend for ``spec`` (built at most once while anyone holds it), held until ``release``.

        The cache key holds a hash of the API key, never the key, so two tenants with different keys
        get different clients while a shared model is still loaded once.
        """
        key = (spec, _key_fingerprint(api_key))
        with self._lock:
            lock = self._load_locks.setdefault(key, threading.Lock())
        with lock:  # one loader per key; the others wait and reuse its result
            with self._lock:
                backend = self._live.get(key)
            if backend is None:
                backend = self.registration(spec.backend).build(spec, api_key)
            with self._lock:
                self._live[key] = backend
                self._users[id(backend)] = self._users.get(id(backend), 0) + 1
        return backend

    def release(self, backends: Iterable[Backend]) -> None:
        """Give back backends from ``acquire``; one nobody holds any more is closed and forgotten."""
        for backend in self._let_go(backends):
            backend.close()

    async def arelease(self, backends: Iterable[Backend]) -> None:
        """``release`` from async code: async clients are closed on the running loop."""
        for backend in self._let_go(backends):
            await backend.aclose()

    def _let_go(self, backends: Iterable[Backend]) -> list[Backend]:
        """Count the releases; the backends that nobody holds any more, forgotten, for closing."""
        unused = []
        with self._lock:
            for backend in backends:
                users = self._users.get(id(backend), 0) - 1
                if users > 0:
                    self._users[id(backend)] = users
                    continue
                self._users.pop(id(backend), None)
                gone = [key for key, live in self._live.items() if live is backend]
                for key in gone:
                    del self._live[key]
                if gone:
                    unused.append(backend)
        return unused

    def live(self) -> list[Backend]:
        """The backends built and not yet released (what ``close()`` would close)."""
        with self._lock:
            return list(self._live.values())

    def close(self) -> None:
        """Close every live backend and forget it; the registry stays usable (it builds anew)."""
        for backend in self._forget_all():
            backend.close()

    async def aclose(self) -> None:
        """``close`` from async code."""
        for backend in self._forget_all():
            await backend.aclose()

    def _forget_all(self) -> list[Backend]:
        with self._lock:
            backends, self._live, self._users = list(self._live.values()), {}, {}
            self._load_locks.clear()
        return backends

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _key_fingerprint(api_key: SecretStr | str | None) -> str | None:
    if api_key is None:
        return None
    raw = api_key if isinstance(api_key, str) else api_key.get_secret_value()
    return hashlib.sha256(raw.encode()).hexdigest()


_default = Registry()


def default_registry() -> Registry:
    """The process-wide registry: what ``Reranker`` uses unless given one, and ``register_backend`` fills."""
    return _default


def register_backend(name: str, factory: BackendFactory, *, replace: bool = False,
                     options: Mapping[str, Option] | None = None, default_model: str | None = None,
                     uses_api_key: bool | None = None, local: bool | None = None) -> None:
    """``Registry.register`` on the process-wide registry (see there)."""
    _default.register(name, factory, replace=replace, options=options, default_model=default_model,
                      uses_api_key=uses_api_key, local=local)


def available_backends() -> list[str]:
    """Every backend name the process-wide registry knows (aliases excluded)."""
    return _default.names()


def canonical_name(name: str) -> str:
    return Registry.canonical_name(name)
