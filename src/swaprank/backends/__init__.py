"""Backends, and everything a plugin author needs, from one public module.

The contract (docs/design.md, "The backend contract") is the :class:`Backend` base class:

- ``score(query, texts) -> Scores`` *or* ``score_many([(query, texts), ...]) -> list[Scores]``
  (write one; the other comes from the base class), with ``Scores.normalized`` on [0, 1] and
  ``Scores.raw`` the model's own value;
- ``ascore_many`` (default: ``score_many`` on the backend's own thread pool; a network backend
  overrides it with a native async client);
- ``info() -> BackendInfo``: label, whether it runs locally, takes an API key, has list-relative
  scores, and how it windows long documents (override ``windowing()`` for the last);
- ``close()`` / ``aclose()``: release threads and clients.

Class attributes describe a backend before it is built: ``vendor``, ``default_model``,
``options`` (typed ``Option`` table; ``None`` takes any option untyped), ``uses_api_key``, ``local``.
Policy (ordering, top_n, thresholds, dedup, windows, fallback, cache) is never a backend's job.

A runnable example (this docstring is executed by the test suite)::

    >>> from swaprank import Reranker
    >>> from swaprank.backends import Backend, Registry, Scores
    >>> class WordOverlap(Backend):
    ...     '''Scores a text by the share of the query's words it contains.'''
    ...     vendor = "overlap"
    ...     default_model = "words"
    ...     uses_api_key = False
    ...     def score(self, query, texts):
    ...         words = set(query.lower().split())
    ...         shares = [len(words & set(t.lower().split())) / len(words) for t in texts]
    ...         return Scores(raw=shares, normalized=shares)
    >>> plugins = Registry()
    >>> plugins.register("overlap", WordOverlap)
    >>> with Reranker("overlap", registry=plugins, top_n=2) as rr:
    ...     [d.text for d in rr.rerank("red apples", ["green pears", "red apples", "apples"])]
    ['red apples', 'apples']

``swaprank.register_backend(name, factory)`` registers in the process-wide registry instead, and
the ``swaprank.backends`` entry-point group makes a package's backends available by name.
"""

from swaprank.backends.contract import Backend, BackendInfo, Request, Scores, sigmoid
from swaprank.backends.optional import require
from swaprank.backends.registry import (
    Registration,
    Registry,
    available_backends,
    default_registry,
    register_backend,
)
from swaprank.specs import BackendSpec, Option
from swaprank.windows import CharCounter, Limit, TokenizerCounter, Windowing, WindowPolicy, window_options

__all__ = [
    "Backend",
    "BackendInfo",
    "BackendSpec",
    "CharCounter",
    "Limit",
    "Option",
    "Registration",
    "Registry",
    "Request",
    "Scores",
    "TokenizerCounter",
    "WindowPolicy",
    "Windowing",
    "available_backends",
    "default_registry",
    "register_backend",
    "require",
    "sigmoid",
    "window_options",
]
