"""The backend contract (swaprank.backends): plugins, registries, results and the lifecycle of what
backends hold. Every test uses the real engine and, where a model is needed, a real tiny one."""

from __future__ import annotations

import asyncio
import copy
import doctest
import pickle
import threading
from collections.abc import Sequence
from typing import Any

import pytest

import swaprank.backends
from swaprank import ClosedError, ConfigError, RankedDocument, Reranker, RerankResult, register_backend
from swaprank.backends import Backend, BackendInfo, Registry, Scores
from swaprank.types import Usage
from tests.fakes import FakeServer
from tests.fakes.helpers import DOCS, QUERY, TEST_KEY

pytest_plugins = ["tests.fakes.fixtures"]

QUERY_WORDS = "red apples"
TEXTS = ["green pears", "red apples and more red apples", "apples", "nothing here"]
EXPECTED = [1, 2, 0, 3]  # by word overlap with QUERY_WORDS, input order breaking ties


def overlap(query: str, texts: Sequence[str]) -> Scores:
    words = set(query.lower().split())
    shares = [len(words & set(t.lower().split())) / len(words) for t in texts]
    return Scores(raw=[s * 10 for s in shares], normalized=shares)


class ScoreOnly(Backend):
    """A plugin that writes only ``score``, as the plugin docs say is enough."""

    vendor = "score-only"
    default_model = "words"
    uses_api_key = False

    def score(self, query: str, texts: Sequence[str]) -> Scores:
        return overlap(query, texts)


class DuckScorer:
    """A scorer that does not subclass Backend at all: only a ``score`` method."""

    def __init__(self, spec: Any, *, api_key: Any = None) -> None:
        self.spec = spec

    def score(self, query: str, texts: Sequence[str]) -> Scores:
        return overlap(query, texts)


# ------------------------------------------------------------------ plugins


@pytest.mark.parametrize("factory", [ScoreOnly, DuckScorer], ids=["backend-subclass", "duck-typed"])
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_score_only_plugin_works_through_the_engine_and_both_adapters(factory: Any, mode: str) -> None:
    from langchain_core.documents import Document as LCDocument
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

    from swaprank.langchain import RerankCompressor
    from swaprank.llama_index import RerankPostprocessor

    register_backend("plugin", factory, default_model="words")
    rr = Reranker("plugin:words")
    result = rr.rerank(QUERY_WORDS, TEXTS) if mode == "sync" else asyncio.run(rr.arerank(QUERY_WORDS, TEXTS))
    assert [d.index for d in result] == EXPECTED
    assert [d.score for d in result] == [1.0, 0.5, 0.0, 0.0] and result.model_name == "plugin:words"

    nodes = [NodeWithScore(node=TextNode(text=t, id_=f"n{i}"), score=0.1) for i, t in enumerate(TEXTS)]
    post = RerankPostprocessor(model="plugin:words", top_n=2)
    bundle = QueryBundle(QUERY_WORDS)
    got = (post.postprocess_nodes(nodes, bundle) if mode == "sync"
           else asyncio.run(post.apostprocess_nodes(nodes, bundle)))
    assert [n.node.node_id for n in got] == ["n1", "n2"] and [n.score for n in got] == [1.0, 0.5]

    docs = [LCDocument(page_content=t, id=f"d{i}") for i, t in enumerate(TEXTS)]
    compressor = RerankCompressor(model="plugin:words", top_n=2)
    out = (compressor.compress_documents(docs, QUERY_WORDS) if mode == "sync"
           else asyncio.run(compressor.acompress_documents(docs, QUERY_WORDS)))
    assert [d.id for d in out] == ["d1", "d2"]
    assert [d.metadata["relevance_score"] for d in out] == [1.0, 0.5]
    assert out[0].metadata["rerank_model"] == "plugin:words"


def test_a_backend_class_with_neither_scoring_method_is_refused_at_registration() -> None:
    class Nothing(Backend):
        default_model = "m"

    class NotABackend:
        def rank(self, query: str, texts: Sequence[str]) -> None: ...

    for cls in (Nothing, NotABackend):
        with pytest.raises(ConfigError, match="implements neither score nor score_many"):
            register_backend("broken", cls)
    assert "broken" not in swaprank.available_backends()


def test_a_factory_that_builds_a_scoreless_object_fails_loudly_even_inside_a_chain() -> None:
    """A plugin bug is a configuration error: it must not pass for an outage the chain falls back from."""
    register_backend("builds-junk", lambda spec, api_key=None: object(), default_model="m")
    register_backend("score-only", ScoreOnly)
    with pytest.raises(ConfigError, match=r"'builds-junk' built an object of type object that implements neither"):
        Reranker("builds-junk | score-only").rerank(QUERY_WORDS, TEXTS)


def test_two_registries_do_not_see_each_others_plugins_or_backends() -> None:
    first, second = Registry(), Registry()
    first.register("mine", ScoreOnly)
    assert "mine" in first.names() and "mine" not in second.names()
    assert "mine" not in swaprank.available_backends()  # nor the process-wide one
    with pytest.raises(ConfigError, match="unknown backend 'mine'"):
        Reranker("mine", registry=second)
    second.register("mine", DuckScorer, default_model="other")
    a, b = Reranker("mine", registry=first), Reranker("mine", registry=second)
    a.warmup()
    b.warmup()
    assert [type(x).__name__ for x in first.live()] == ["ScoreOnly"]
    assert [type(x).__name__ for x in second.live()] == ["ForeignBackend"]
    assert a.model == "mine:words" and b.model == "mine:other"


def test_info_is_the_one_value_the_engine_reads() -> None:
    register_backend("score-only", ScoreOnly)
    rr = Reranker("score-only")
    [info] = rr.info()
    assert info == BackendInfo(label="score-only:words", local=False, uses_api_key=False,
                               list_relative_scores=False, windowing=None)


def test_the_plugin_example_in_the_public_module_runs() -> None:
    failures, tried = doctest.testmod(swaprank.backends, raise_on_error=False, verbose=False)
    assert tried >= 5 and failures == 0


# ------------------------------------------------------------------ RerankResult


def _result() -> RerankResult:
    docs = [RankedDocument(index=i, score=1 - i / 10, raw_score=float(i), text=f"t{i}") for i in range(4)]
    return RerankResult(docs, model="m?x=1", model_name="m", usage=Usage(total_tokens=7), truncated=1, windowed=2,
                        passthrough=False)


def _same_attributes(a: RerankResult, b: Any) -> bool:
    fields = ("model", "model_name", "usage", "truncated", "windowed", "passthrough", "error")
    return isinstance(b, RerankResult) and all(getattr(a, f) == getattr(b, f) for f in fields)


@pytest.mark.parametrize("operation", [
    lambda r: r[:2], lambda r: r[1:], lambda r: r[::-1], lambda r: r.copy(), lambda r: copy.copy(r),
    lambda r: copy.deepcopy(r), lambda r: r + [], lambda r: [] + r,  # noqa: RUF005 - the operators are under test
     lambda r: r + r[:1], lambda r: r * 2,
    lambda r: 2 * r, lambda r: pickle.loads(pickle.dumps(r)), lambda r: r.sorted(key=lambda d: d.index, reverse=True),
], ids=["slice-head", "slice-tail", "reversed-slice", "copy", "copy.copy", "deepcopy", "plus-list", "list-plus",
        "plus-slice", "times", "rtimes", "pickle", "sorted-method"])
def test_result_attributes_survive_list_operations(operation: Any) -> None:
    result = _result()
    out = operation(result)
    assert _same_attributes(result, out)


def test_result_is_still_a_list_for_everything_that_uses_one() -> None:
    result = _result()
    assert isinstance(result, list) and result == list(result) and len(result) == 4
    assert result[0].index == 0 and [d.index for d in result[1:3]] == [1, 2]
    assert [d.index for d in result.sorted(key=lambda d: d.raw_score, reverse=True)] == [3, 2, 1, 0]
    assert type(sorted(result, key=lambda d: d.index)) is list  # the built-in: documented to drop them
    slice_ = result[:2]
    slice_.append(result[3])  # a slice is its own list: the original is untouched
    assert len(result) == 4


# ------------------------------------------------------------------ lifecycle


def _threads(prefix: str) -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(prefix)]


def test_close_releases_a_local_models_threads(tiny_spec: str) -> None:
    before = _threads("swaprank-cross-encoder")

    async def run() -> None:
        async with Reranker(tiny_spec) as rr:
            await asyncio.gather(*(rr.arerank(QUERY, DOCS) for _ in range(4)))
            assert len(_threads("swaprank-cross-encoder")) > len(before)  # scoring ran on the pool

    asyncio.run(run())
    assert _threads("swaprank-cross-encoder") == before


def test_a_shared_backend_is_closed_by_its_last_holder_only(tiny_spec: str) -> None:
    registry = Registry()
    first, second = Reranker(tiny_spec, registry=registry), Reranker(tiny_spec, registry=registry)
    first.warmup()
    second.warmup()
    [shared] = registry.live()
    first.close()
    assert registry.live() == [shared]  # still held by the second Reranker
    assert [d.index for d in second.rerank(QUERY, DOCS)] == [d.index for d in Reranker(tiny_spec).rerank(QUERY, DOCS)]
    second.close()
    assert registry.live() == []
    with pytest.raises(ClosedError, match="closed"):
        first.rerank(QUERY, DOCS)


@pytest.mark.parametrize("vendor", ["jina", "cohere", "mixedbread"])
def test_close_releases_a_hosted_backends_clients_and_threads(vendor: str, fake_servers: dict[str, FakeServer]
                                                              ) -> None:
    from tests.fakes.helpers import spec

    server = fake_servers[vendor]
    server.reset()
    server.api_key = TEST_KEY
    registry = Registry()
    with Reranker(spec(server, max_docs_per_request=2), api_key=TEST_KEY, registry=registry) as rr:
        assert len(rr.rerank(QUERY, DOCS)) == len(DOCS)  # split: parts sent from the backend's threads
        [backend] = registry.live()
        owned = backend._owned  # type: ignore[attr-defined]
        http = [o._sync for o in owned]
        assert http and all(h is not None for h in http)
        assert _threads(f"swaprank-{backend.vendor}")
    assert registry.live() == []
    for client in http:
        raw = client[1] if isinstance(client, tuple) else client
        assert raw.is_closed
    assert not _threads(f"swaprank-{backend.vendor}")


def test_aclose_closes_the_loops_async_clients(fake_servers: dict[str, FakeServer]) -> None:
    from tests.fakes.helpers import spec

    server = fake_servers["jina"]
    server.reset()
    server.api_key = TEST_KEY
    registry = Registry()

    async def run() -> Any:
        async with Reranker(spec(server), api_key=TEST_KEY, registry=registry) as rr:
            await rr.arerank(QUERY, DOCS)
            [backend] = registry.live()
            return backend._owned[0]._async.current()  # type: ignore[attr-defined]

    client = asyncio.run(run())
    assert client.is_closed and registry.live() == []


def test_a_closed_reranker_refuses_work_with_a_typed_error(tiny_spec: str) -> None:
    rr = Reranker(tiny_spec)
    rr.close()
    with pytest.raises(ClosedError, match="build a new one"):
        rr.rerank(QUERY, DOCS)
    with pytest.raises(ClosedError):
        asyncio.run(rr.arerank(QUERY, DOCS))
