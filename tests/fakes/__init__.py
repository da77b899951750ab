"""Fake Cohere / Voyage / Jina / TEI servers on 127.0.0.1 for offline tests, notebooks and benchmarks.

    from tests.fakes import FakeCohere, Fault

    with FakeCohere(latency=0.1) as server:
        reranker = Reranker(f"cohere:rerank-v3.5?base_url={server.url}", api_key="any")
"""

from tests.fakes.server import FakeServer, Fault, Recorded, relevance, token_count
from tests.fakes.vendors import FakeCohere, FakeJina, FakeTEI, FakeVoyage
from tests.fakes.vendors_cloud import FakeBedrock, FakeNvidia
from tests.fakes.vendors_hosted import FakeMixedbread, FakePinecone, FakeZeroEntropy
from tests.fakes.vendors_selfhosted import FakeInfinity, FakeLlamaCpp, FakeVLLM, FakeVLLMScore

FAKES: dict[str, type[FakeServer]] = {
    "cohere": FakeCohere,
    "voyage": FakeVoyage,
    "jina": FakeJina,
    "tei": FakeTEI,
    "vllm": FakeVLLM,
    "llamacpp": FakeLlamaCpp,
    "infinity": FakeInfinity,
    "pinecone": FakePinecone,
    "zeroentropy": FakeZeroEntropy,
    "mixedbread": FakeMixedbread,
    "nvidia": FakeNvidia,
    "bedrock": FakeBedrock,
}


def spec_for(vendor: str, url: str, **options: object) -> str:
    """The config string that points ``vendor``'s backend at a fake running at ``url``."""
    base = {
        "cohere": "cohere:rerank-v3.5",
        "voyage": "voyage:rerank-2.5",
        "jina": "jina:jina-reranker-v2-base-multilingual",
        "tei": f"tei:{url}",
        "vllm": "vllm:BAAI/bge-reranker-v2-m3",
        "llamacpp": "llamacpp:bge-reranker-v2-m3",
        "infinity": "infinity:mixedbread-ai/mxbai-rerank-xsmall-v1",
        "pinecone": "pinecone:bge-reranker-v2-m3",
        "zeroentropy": "zeroentropy:zerank-1",
        "mixedbread": "mixedbread:mixedbread-ai/mxbai-rerank-large-v2",
        "nvidia": "nvidia:nvidia/llama-3.2-nv-rerankqa-1b-v2",
        "bedrock": "bedrock:amazon.rerank-v1:0",
    }[vendor]
    if vendor != "tei":
        options = {"base_url": url + ("/v1" if vendor == "voyage" else ""), **options}
    if vendor == "bedrock":
        options = {"region": "us-west-2", **options}
    if not options:
        return base
    return base + "?" + "&".join(f"{k}={_fmt(v)}" for k, v in options.items())


def _fmt(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


__all__ = [
    "FAKES",
    "FakeBedrock",
    "FakeCohere",
    "FakeInfinity",
    "FakeJina",
    "FakeLlamaCpp",
    "FakeMixedbread",
    "FakeNvidia",
    "FakePinecone",
    "FakeServer",
    "FakeTEI",
    "FakeVLLM",
    "FakeVLLMScore",
    "FakeVoyage",
    "FakeZeroEntropy",
    "Fault",
    "Recorded",
    "relevance",
    "spec_for",
    "token_count",
]
