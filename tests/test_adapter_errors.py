"""Both adapters refuse what a new user gets wrong, alike and with the fix (issue 25): a field they do
not have (``topn``, ``top_k``), and strings where framework documents or nodes belong."""

from __future__ import annotations

import asyncio

import pytest
from langchain_core.documents import Document as LCDocument
from llama_index.core import Document as LIDocument
from llama_index.core.schema import NodeWithScore, TextNode

from swaprank import ConfigError, DocumentTypeError, InvalidInputError
from swaprank.langchain import RerankCompressor
from swaprank.llama_index import RerankPostprocessor
from tests import scripted_backend

ADAPTERS = [RerankPostprocessor, RerankCompressor]


@pytest.fixture(autouse=True)
def _scripted() -> None:
    scripted_backend.install()


@pytest.mark.parametrize("adapter", ADAPTERS, ids=lambda a: a.__name__)
def test_a_misspelled_field_is_refused_with_the_right_one(adapter: type) -> None:
    with pytest.raises(ConfigError) as info:
        adapter(model="scripted", topn=2)
    message = str(info.value)
    assert message.startswith(f"{adapter.__name__} has no field 'topn': did you mean 'top_n'?")
    assert "(fields: " in message and "top_n" in message.split("(fields: ")[1]


@pytest.mark.parametrize("adapter", ADAPTERS, ids=lambda a: a.__name__)
def test_top_k_is_explained_not_ignored(adapter: type) -> None:
    with pytest.raises(ConfigError, match=r"has no field 'top_k': did you mean 'top_n'\? swaprank calls the number "
                                          r"of results kept after reranking top_n"):
        adapter(model="scripted", top_k=2)


@pytest.mark.parametrize(("given", "meant"), [("threshold", "score_threshold"), ("model_name", "model"),
                                              ("min_result", "min_results"), ("on_eror", "on_error")])
def test_other_likely_names_suggest_the_field(given: str, meant: str) -> None:
    for adapter in ADAPTERS:
        with pytest.raises(ConfigError, match=rf"has no field '{given}': did you mean '{meant}'\?"):
            adapter(model="scripted", **{given: 1})


@pytest.mark.parametrize("adapter", ADAPTERS, ids=lambda a: a.__name__)
def test_assigning_an_unknown_field_is_refused_the_same_way(adapter: type) -> None:
    component = adapter(model="scripted", top_n=2)
    with pytest.raises(ConfigError, match="has no field 'topn': did you mean 'top_n'"):
        component.topn = 3
    assert component.top_n == 2 and component.reranker.top_n == 2


def test_a_name_with_no_likely_field_lists_the_fields() -> None:
    with pytest.raises(ConfigError, match=r"has no field 'zzz': it is not one of its settings \(fields: .*model"):
        RerankPostprocessor(model="scripted", zzz=1)


def test_the_llama_index_framework_fields_still_work() -> None:
    post = RerankPostprocessor(model="scripted", top_n=2, keep_retrieval_score=True)
    assert post.keep_retrieval_score and post.callback_manager is not None


# ------------------------------------------------------------------ wrong document types


@pytest.mark.parametrize("call", ["sync", "async"])
def test_compress_documents_given_strings_names_the_type_and_the_fix(call: str) -> None:
    compressor = RerankCompressor(model="scripted")
    with pytest.raises(DocumentTypeError) as info:
        if call == "sync":
            compressor.compress_documents(["a", "b"], "q")  # type: ignore[list-item]
        else:
            asyncio.run(compressor.acompress_documents(["a", "b"], "q"))  # type: ignore[list-item]
    assert isinstance(info.value, TypeError) and isinstance(info.value, InvalidInputError)
    message = str(info.value)
    assert "expects langchain_core.documents.Document objects; item 0 is a str" in message
    assert "Document(page_content=text)" in message


def test_compress_documents_names_the_position_of_the_odd_one() -> None:
    with pytest.raises(DocumentTypeError, match="item 1 is a int"):
        RerankCompressor(model="scripted").compress_documents([LCDocument(page_content="a"), 3], "q")  # type: ignore


def test_one_string_for_the_documents_says_a_list_is_expected() -> None:
    with pytest.raises(DocumentTypeError, match=r"expects a list of langchain_core\S+ objects, got a str"):
        RerankCompressor(model="scripted").compress_documents("a document", "q")  # type: ignore[arg-type]


@pytest.mark.parametrize("call", ["sync", "async"])
def test_postprocess_nodes_given_strings_names_the_type_and_the_fix(call: str) -> None:
    post = RerankPostprocessor(model="scripted")
    with pytest.raises(DocumentTypeError) as info:
        if call == "sync":
            post.postprocess_nodes(["a", "b"], query_str="q")  # type: ignore[list-item]
        else:
            asyncio.run(post.apostprocess_nodes(["a", "b"], query_str="q"))  # type: ignore[list-item]
    assert isinstance(info.value, TypeError)
    assert "expects llama_index.core.schema.NodeWithScore objects; item 0 is a str" in str(info.value)
    assert "NodeWithScore(node=TextNode(text=text))" in str(info.value)


@pytest.mark.parametrize("node", [LIDocument(text="a"), TextNode(text="a")], ids=["Document", "TextNode"])
def test_postprocess_nodes_given_bare_nodes_says_how_to_wrap_them(node: object) -> None:
    nodes = [NodeWithScore(node=TextNode(text="s=0.5 b"), score=0.1), node]
    with pytest.raises(DocumentTypeError, match=rf"item 1 is a {type(node).__name__}: wrap each node: "
                                                r"NodeWithScore\(node=node\)"):
        RerankPostprocessor(model="scripted").postprocess_nodes(nodes, query_str="q")  # type: ignore[arg-type]


def test_right_types_still_rerank() -> None:
    docs = [LCDocument(page_content="s=0.2 a"), LCDocument(page_content="s=0.9 b")]
    assert [d.page_content for d in RerankCompressor(model="scripted").compress_documents(docs, "q")] == [
        "s=0.9 b", "s=0.2 a"]
    nodes = [NodeWithScore(node=TextNode(text="s=0.2 a")), NodeWithScore(node=TextNode(text="s=0.9 b"))]
    assert [n.node.get_content() for n in RerankPostprocessor(model="scripted").postprocess_nodes(
        nodes, query_str="q")] == ["s=0.9 b", "s=0.2 a"]
