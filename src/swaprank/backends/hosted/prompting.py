"""How ``instruction=`` reaches a rerank API that has no instruction field.

Instruction-following rerankers served behind a plain ``(query, documents)`` API read the
instruction from the text itself, in the form their makers document: Voyage's rerank-2.5 family
and ZeroEntropy's zerank-2 take it inside the query; a Qwen3-Reranker behind vLLM's rerank API
needs its whole prompt template written by the client (vLLM's own example,
``examples/offline_inference/qwen3_reranker.py``: the query carries the system prompt and
``<Instruct>``/``<Query>``, each document ``<Document>`` and the assistant suffix). A
:class:`Prompting` is that form; a backend that has none for its model warns once and sends the
query unchanged (``warn_instruction_ignored``), never silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# Qwen3-Reranker's documented default task, used when the template needs one and none was given.
QWEN3_DEFAULT_INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"
_QWEN3_PREFIX = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct "
    'provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n'
)
_QWEN3_SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"


@dataclass(frozen=True, slots=True)
class Prompting:
    """Templates for the query (``{query}``, ``{instruction}``) and each document (``{document}``)."""

    instruction: str
    query_template: str
    document_template: str = "{document}"

    def apply(self, query: str, texts: Sequence[str]) -> tuple[str, list[str]]:
        # str.replace, not str.format: user text may contain braces.
        prompted = self.query_template.replace("{instruction}", self.instruction).replace("{query}", query)
        return prompted, [self.document_template.replace("{document}", text) for text in texts]

    def overhead(self) -> str:
        """The text the templates add to one (query, document) pair, so windows leave room for it."""
        query, (document,) = self.apply("", [""])
        return query + document


def qwen3_reranker(instruction: str | None) -> Prompting:
    """The Qwen3-Reranker prompt, as vLLM's example and the model card write it."""
    return Prompting(
        instruction or QWEN3_DEFAULT_INSTRUCTION,
        _QWEN3_PREFIX + "<Instruct>: {instruction}\n<Query>: {query}\n",
        "<Document>: {document}" + _QWEN3_SUFFIX,
    )
