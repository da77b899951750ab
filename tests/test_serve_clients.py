"""``swaprank serve`` driven by the real clients people point at it, unchanged: each must get the
order and scores ``Reranker(spec).rerank`` gives, and (Jina-style clients) an error must reach the
user as the client's own exception carrying the service's message, not a ``KeyError``.

The matrix (the ``serve-clients`` extra installs every client marked installed):

========================================  ==========================  =============================
client                                    route it calls              here
========================================  ==========================  =============================
cohere SDK 7 ``ClientV2.rerank``          ``/v2/rerank``              installed
cohere SDK 7 ``Client.rerank`` (v1 API)   ``/v1/rerank``              installed
Haystack ``CohereRanker``                 ``/v2/rerank`` (SDK 7)      installed (cohere-haystack)
LiteLLM ``cohere/``                       ``/v2/rerank``              installed
LlamaIndex ``JinaRerank``                 ``/v1/rerank``              installed
LangChain ``JinaRerank`` (community)      ``/v1/rerank``              installed (URL is a constant)
Haystack ``JinaRanker``                   ``/v1/rerank``              installed (jina-haystack)
LiteLLM ``jina_ai/``                      ``/v1/rerank``              installed
LiteLLM ``hosted_vllm/``                  ``/rerank``                 installed
LiteLLM ``infinity/``                     ``/infinity/rerank``        installed
langchain-cohere ``CohereRerank``         ``/v2/rerank``              NOT installable, see below
LlamaIndex ``CohereRerank``               ``/v2/rerank``              NOT installable, see below
infinity_client / LangChain               ``/infinity/rerank``        NOT installable, see below
``InfinityRerank``
========================================  ==========================  =============================

Not installable next to this project's dependencies without a downgrade (checked with
``pip install --dry-run --report``), so not in the extra and not tested here:

- ``langchain-cohere`` 0.6.0 (the newest) requires ``cohere>=5.18.0,<6.0``; the project has cohere 7.
- ``llama-index-postprocessor-cohere-rerank`` 0.10.0 (the newest) requires ``cohere>=5.15,<7``, and
  cohere 6.1 in turn ``pydantic-core<2.44`` (pydantic 2.12; the project has 2.14).
- ``infinity-client`` 0.0.78 (the newest; LangChain's ``InfinityRerank`` is built on it) requires
  ``httpx>=0.20.0,<0.28.0``; the project has httpx 0.29.

All three were checked by hand from a separate venv (cohere 5.21.1, httpx 0.27.2) against this
service: same order and scores; ``infinity_client`` keeps the ``/infinity`` path of its ``base_url``,
reads ``usage.prompt_tokens``, sends ``raw_scores`` and ``model: "default/not-specified"``, and parses
``/infinity/models`` and ``/infinity/health``.

The app runs once for the module under uvicorn on a loopback port with the tiny random
cross-encoder (deterministic scores, so served and local scores must be equal). Clients that phone
home are told not to before they are imported: LiteLLM reads its bundled model cost map
(``LITELLM_LOCAL_MODEL_COST_MAP``) and sends no telemetry, Haystack sends none.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from typing import Any

import pytest

from swaprank import Reranker
from swaprank.serve.settings import ServeSettings
from tests.serve_support import ServedApp

OFFLINE = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_TELEMETRY": "False",
           "HAYSTACK_TELEMETRY_ENABLED": "False"}
for _name, _value in OFFLINE.items():  # read when the clients are imported, so set before any test runs
    os.environ.setdefault(_name, _value)

DOCS = ["the cat sat on the mat", "dogs bark at the mail carrier", "a cat and a dog share a sofa",
        "quarterly revenue grew nine percent", "cats purr when content", "the cat sat on the mat"]
QUERY = "cat dog"
MODEL = "tiny"
MAX_DOCUMENTS = 20
KEY = "unused-key"  # the service runs without a bearer token; clients insist on sending one


@pytest.fixture(scope="module")
def served(tiny_spec: str) -> Iterator[ServedApp]:
    settings = ServeSettings(model=tiny_spec, served_model_names=(MODEL,), max_documents=MAX_DOCUMENTS,
                             max_wait_ms=1.0)
    with ServedApp(settings) as app:
        yield app


@pytest.fixture(scope="module")
def expected(tiny_spec: str) -> list[tuple[int, float]]:
    """(index, score) in order, as the library gives them locally."""
    return [(d.index, d.score) for d in Reranker(tiny_spec).rerank(QUERY, DOCS)]


def pairs(results: Any) -> list[tuple[int, float]]:
    return [(r["index"], r["relevance_score"]) for r in results]


# ---------------------------------------------------------------------- Cohere


def test_cohere_sdk_v2_client(served: ServedApp, expected: list[tuple[int, float]]) -> None:
    import cohere

    client = cohere.ClientV2(base_url=served.url, api_key=KEY)
    answer = client.rerank(model=MODEL, query=QUERY, documents=DOCS, top_n=4)
    assert [(r.index, r.relevance_score) for r in answer.results] == expected[:4]

    async def run() -> Any:
        return await cohere.AsyncClientV2(base_url=served.url, api_key=KEY).rerank(
            model=MODEL, query=QUERY, documents=DOCS)

    assert [(r.index, r.relevance_score) for r in asyncio.run(run()).results] == expected
    with pytest.raises(cohere.NotFoundError) as missing:
        client.rerank(model="rerank-v3.5", query=QUERY, documents=DOCS)
    assert "rerank-v3.5" in missing.value.body["message"] and MODEL in missing.value.body["message"]


def test_cohere_sdk_v1_client(served: ServedApp, expected: list[tuple[int, float]]) -> None:
    """The v1 client posts Cohere v1 requests to /v1/rerank, which the Jina/vLLM route answers."""
    import cohere

    answer = cohere.Client(base_url=served.url, api_key=KEY).rerank(model=MODEL, query=QUERY, documents=DOCS,
                                                                     return_documents=True)
    assert [(r.index, r.relevance_score) for r in answer.results] == expected
    assert [r.document.text for r in answer.results if r.document] == [DOCS[i] for i, _ in expected]


def test_haystack_cohere_ranker(served: ServedApp, expected: list[tuple[int, float]]) -> None:
    from haystack import Document
    from haystack.utils import Secret
    from haystack_integrations.components.rankers.cohere import CohereRanker

    ranker = CohereRanker(model=MODEL, api_key=Secret.from_token(KEY), api_base_url=served.url, top_k=len(DOCS))
    ranker.warm_up()
    ranked = ranker.run(query=QUERY, documents=[Document(content=d, meta={"i": i}) for i, d in enumerate(DOCS)])
    assert [(d.meta["i"], d.score) for d in ranked["documents"]] == expected


def test_litellm_cohere(served: ServedApp, expected: list[tuple[int, float]]) -> None:
    import litellm

    answer = litellm.rerank(model=f"cohere/{MODEL}", query=QUERY, documents=DOCS, api_base=served.url,
                            api_key=KEY, top_n=3)
    assert pairs(answer.results) == expected[:3]
    assert [r["document"]["text"] for r in answer.results] == [DOCS[i] for i, _ in expected[:3]]
    with pytest.raises(litellm.NotFoundError, match="does not exist"):
        litellm.rerank(model="cohere/rerank-v3.5", query=QUERY, documents=DOCS, api_base=served.url, api_key=KEY)


# ---------------------------------------------------------------------- Jina / vLLM


def test_llama_index_jina_rerank(served: ServedApp, expected: list[tuple[int, float]]) -> None:
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
    from llama_index.postprocessor.jinaai_rerank import JinaRerank

    nodes = [NodeWithScore(node=TextNode(text=d, id_=str(i))) for i, d in enumerate(DOCS)]
    rerank = JinaRerank(model=MODEL, base_url=served.url + "/v1", api_key=KEY, top_n=len(DOCS))
    ranked = rerank.postprocess_nodes(nodes, QueryBundle(QUERY))
    assert [(int(n.node.node_id), n.score) for n in ranked] == expected
    # errors reach the user as the client's RuntimeError with the service's message (detail)
    with pytest.raises(RuntimeError, match="does not exist; this service serves: tiny"):
        JinaRerank(model="jina-reranker-v2", base_url=served.url + "/v1", api_key=KEY).postprocess_nodes(
            nodes, QueryBundle(QUERY))
    many = [NodeWithScore(node=TextNode(text="d")) for _ in range(MAX_DOCUMENTS + 1)]
    with pytest.raises(RuntimeError, match=f"at most {MAX_DOCUMENTS}"):
        rerank.postprocess_nodes(many, QueryBundle(QUERY))


def test_langchain_community_jina_rerank(served: ServedApp, expected: list[tuple[int, float]],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """LangChain's JinaRerank has no base URL setting: its module constant is what users repoint."""
    from langchain_community.document_compressors import jina_rerank
    from langchain_core.documents import Document

    monkeypatch.setattr(jina_rerank, "JINA_API_URL", served.url + "/v1/rerank")
    compressor = jina_rerank.JinaRerank(model=MODEL, jina_api_key=KEY, top_n=len(DOCS))
    ranked = compressor.compress_documents([Document(page_content=d, metadata={"i": i}) for i, d in enumerate(DOCS)],
                                           QUERY)
    assert [(d.metadata["i"], d.metadata["relevance_score"]) for d in ranked] == expected
    with pytest.raises(RuntimeError, match="does not exist; this service serves: tiny"):
        jina_rerank.JinaRerank(model="jina-reranker-v2", jina_api_key=KEY).rerank(DOCS, QUERY)
    with pytest.raises(RuntimeError, match=f"at most {MAX_DOCUMENTS}"):
        compressor.rerank(["d"] * (MAX_DOCUMENTS + 1), QUERY)


def test_haystack_jina_ranker(served: ServedApp, expected: list[tuple[int, float]]) -> None:
    from haystack import Document
    from haystack.utils import Secret
    from haystack_integrations.components.rankers.jina import JinaRanker

    documents = [Document(content=d, meta={"i": i}) for i, d in enumerate(DOCS)]
    ranker = JinaRanker(model=MODEL, api_key=Secret.from_token(KEY), base_url=served.url + "/v1/rerank")
    ranked = ranker.run(query=QUERY, documents=documents)
    assert [(d.meta["i"], d.score) for d in ranked["documents"]] == expected
    assert ranked["meta"]["model"] == MODEL
    wrong = JinaRanker(model="jina-reranker-v2", api_key=Secret.from_token(KEY), base_url=served.url + "/v1/rerank")
    with pytest.raises(RuntimeError, match="does not exist; this service serves: tiny"):
        wrong.run(query=QUERY, documents=documents)
    with pytest.raises(RuntimeError, match=f"at most {MAX_DOCUMENTS}"):
        ranker.run(query=QUERY, documents=[Document(content="d")] * (MAX_DOCUMENTS + 1))


@pytest.mark.parametrize("provider", ["jina_ai", "hosted_vllm"])
def test_litellm_jina_and_vllm(served: ServedApp, expected: list[tuple[int, float]], provider: str) -> None:
    import litellm

    answer = litellm.rerank(model=f"{provider}/{MODEL}", query=QUERY, documents=DOCS, api_base=served.url,
                            api_key=KEY)
    assert pairs(answer.results) == expected
    assert [r["document"]["text"] for r in answer.results] == [DOCS[i] for i, _ in expected]
    with pytest.raises(litellm.NotFoundError, match="does not exist"):
        litellm.rerank(model=f"{provider}/other", query=QUERY, documents=DOCS, api_base=served.url, api_key=KEY)


# ---------------------------------------------------------------------- Infinity


def test_litellm_infinity(served: ServedApp, expected: list[tuple[int, float]]) -> None:
    """Infinity clients take the /infinity prefix as their base URL (LiteLLM appends /rerank to it)."""
    import litellm

    answer = litellm.rerank(model=f"infinity/{MODEL}", query=QUERY, documents=DOCS, api_base=served.url + "/infinity",
                            api_key=KEY)
    assert pairs(answer.results) == expected
    # Infinity's document is the text itself, which LiteLLM wraps once (vLLM's {"text"} would be wrapped twice)
    assert [r["document"] for r in answer.results] == [{"text": DOCS[i]} for i, _ in expected]
    with pytest.raises(litellm.NotFoundError, match="does not exist"):
        litellm.rerank(model="infinity/other", query=QUERY, documents=DOCS, api_base=served.url + "/infinity",
                       api_key=KEY)
