"""Local LLM rerankers (Qwen3-Reranker style) through ``cross-encoder:``, on a tiny random Qwen3.

sentence-transformers 6 loads a ``*ForCausalLM`` checkpoint as a chat-template prompt scored by
logit("yes") - logit("no") at the last position. These tests recompute every expected score by
hand, with transformers alone (the chat template, the causal LM, a softmax over the two logits),
so they check swaprank's mapping and prompt, not sentence-transformers against itself. The random
model's scores mean nothing: only the mechanics are claimed.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import pytest

from swaprank import BackendUnavailableError, ConfigError, Reranker
from swaprank.backends import notices, registry
from swaprank.backends.cross_encoder import CrossEncoderBackend
from swaprank.config import parse_spec
from swaprank.windows import expand
from tests.assets import (
    QWEN3_DEFAULT_INSTRUCTION,
    build_tiny_cross_encoder,
    build_tiny_qwen3_reranker,
)

QUERY = "does vitamin d reduce the risk of bone fractures"
DOCS = [
    "vitamin d supplementation and fracture risk in older adults .",
    "a randomized trial of calcium in women .",
    "sourdough bread needs a long slow rise .",
    "bone mineral density measured by x ray .",
]
INSTRUCTION = "Given a scientific claim, retrieve passages that supports it"
# ~300 tokens: far past the tiny model's 128-token limit once the template is around it
LONG_DOC = " ".join(f"filler sentence number {i % 100} about unrelated matters ." for i in range(50))


@pytest.fixture(scope="module")
def qwen_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_qwen3_reranker(tmp_path_factory.mktemp("tiny-qwen3-reranker"))


@pytest.fixture(scope="module")
def hand(qwen_dir: Path) -> HandScorer:
    return HandScorer(qwen_dir)


@pytest.fixture(autouse=True)
def _fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sees its own "once": the warn-once registry is process-wide."""
    monkeypatch.setattr(notices, "_warned", set())


class HandScorer:
    """P(yes) for one (query, document) pair, computed the way Qwen3-Reranker's card does it."""

    def __init__(self, model_dir: Path) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        self.model = AutoModelForCausalLM.from_pretrained(str(model_dir)).eval()
        self.yes = self.tokenizer.convert_tokens_to_ids("yes")
        self.no = self.tokenizer.convert_tokens_to_ids("no")

    def prompt(self, query: str, document: str, instruction: str | None = None) -> str:
        messages: list[dict[str, Any]] = [] if instruction is None else [{"role": "system", "content": instruction}]
        messages += [{"role": "query", "content": query}, {"role": "document", "content": document}]
        return str(self.tokenizer.apply_chat_template(messages, tokenize=False))

    def length(self, query: str, document: str, instruction: str | None = None) -> int:
        return len(self.tokenizer(self.prompt(query, document, instruction), add_special_tokens=False)["input_ids"])

    def score(self, query: str, document: str, instruction: str | None = None) -> tuple[float, float]:
        """(P(yes) by softmax over the yes/no logits, logit(yes) - logit(no))."""
        ids = self.tokenizer(self.prompt(query, document, instruction), add_special_tokens=False,
                             return_tensors="pt")["input_ids"]
        with self.torch.inference_mode():
            last = self.model(input_ids=ids).logits[0, -1].float()
        pair = self.torch.stack([last[self.yes], last[self.no]])
        return float(self.torch.softmax(pair, dim=0)[0]), float(last[self.yes] - last[self.no])


def backend(spec: str) -> CrossEncoderBackend:
    made = registry.default_registry().acquire(parse_spec(spec))
    assert isinstance(made, CrossEncoderBackend)
    return made


# ----------------------------------------------------------------------------- scores and prompt


def test_scores_are_p_yes_from_the_yes_no_logits_and_raw_is_their_difference(qwen_dir: Path,
                                                                             hand: HandScorer) -> None:
    result = Reranker(f"cross-encoder:{qwen_dir}").rerank(QUERY, DOCS)
    assert backend(f"cross-encoder:{qwen_dir}").causal_lm
    by_index = {r.index: r for r in result}
    expected = [hand.score(QUERY, d) for d in DOCS]
    for i, (p_yes, difference) in enumerate(expected):
        assert by_index[i].score == pytest.approx(p_yes, abs=1e-5)
        assert by_index[i].raw_score == pytest.approx(difference, abs=1e-4)
        assert by_index[i].score == pytest.approx(1 / (1 + math.exp(-difference)), abs=1e-5)  # one sigmoid
        assert type(by_index[i].score) is float and 0.0 <= by_index[i].score <= 1.0
    assert len({round(p, 4) for p, _ in expected}) == len(DOCS)  # the random model separates them
    assert [r.index for r in result] == sorted(range(len(DOCS)), key=lambda i: -expected[i][0])


def test_default_prompt_carries_the_models_default_instruction(hand: HandScorer) -> None:
    # What the expected scores above were computed from: the template's default <Instruct> line.
    assert f"<Instruct>: {QWEN3_DEFAULT_INSTRUCTION}\n<Query>: {QUERY}\n<Document>: {DOCS[0]}<|im_end|>" in \
        hand.prompt(QUERY, DOCS[0])


def test_explicit_sigmoid_is_the_same_single_mapping(qwen_dir: Path) -> None:
    auto = Reranker(f"cross-encoder:{qwen_dir}").rerank(QUERY, DOCS)
    explicit = Reranker(f"cross-encoder:{qwen_dir}?activation=sigmoid").rerank(QUERY, DOCS)
    assert [(r.index, r.score, r.raw_score) for r in auto] == [(r.index, r.score, r.raw_score) for r in explicit]


def test_activation_identity_is_refused_for_log_odds(qwen_dir: Path) -> None:
    with pytest.raises(ConfigError, match="activation=identity"):
        Reranker(f"cross-encoder:{qwen_dir}?activation=identity").rerank(QUERY, DOCS)


def test_instruction_replaces_the_default_instruct_line(qwen_dir: Path, hand: HandScorer) -> None:
    spec = f"cross-encoder:{qwen_dir}?instruction={INSTRUCTION}"
    result = {r.index: r for r in Reranker(spec).rerank(QUERY, DOCS)}
    assert f"<Instruct>: {INSTRUCTION}\n<Query>: {QUERY}\n" in hand.prompt(QUERY, DOCS[0], INSTRUCTION)
    for i, doc in enumerate(DOCS):
        p_yes, difference = hand.score(QUERY, doc, INSTRUCTION)
        assert result[i].score == pytest.approx(p_yes, abs=1e-5)
        assert result[i].raw_score == pytest.approx(difference, abs=1e-4)
        # ...and it is not the default prompt's score: the instruction reached the model
        assert abs(result[i].score - hand.score(QUERY, doc)[0]) > 1e-4


def test_empty_instruction_is_a_config_error(qwen_dir: Path) -> None:
    with pytest.raises(ConfigError, match="instruction= is empty"):
        Reranker(f"cross-encoder:{qwen_dir}?instruction=").rerank(QUERY, DOCS)


def test_template_without_a_system_slot_warns_once_and_scores_without_it(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    template = ('{%- for m in messages if m.role != "system" -%}{{ m.content }}\n{%- endfor -%}'
                '<|im_start|>assistant\n')
    model_dir = build_tiny_qwen3_reranker(tmp_path / "no-system", template=template)
    plain = Reranker(f"cross-encoder:{model_dir}").rerank(QUERY, DOCS[:2])
    with caplog.at_level(logging.WARNING, logger="swaprank"):
        first = Reranker(f"cross-encoder:{model_dir}?instruction={INSTRUCTION}").rerank(QUERY, DOCS[:2])
        registry.default_registry().close()
        Reranker(f"cross-encoder:{model_dir}?instruction={INSTRUCTION}").rerank(QUERY, DOCS[:2])
    warnings = [r for r in caplog.records if "ignores instruction=" in r.getMessage()]
    assert len(warnings) == 1 and "system message" in warnings[0].getMessage()
    assert [r.score for r in first] == [r.score for r in plain]


def test_template_that_drops_the_pair_is_a_load_error(tmp_path: Path) -> None:
    # A generic chat template (user turns only) would score the same empty prompt for every document.
    template = '{%- for m in messages if m.role == "user" -%}{{ m.content }}{%- endfor -%}<|im_start|>assistant\n'
    model_dir = build_tiny_qwen3_reranker(tmp_path / "user-only", template=template)
    with pytest.raises(BackendUnavailableError, match="chat template"):
        backend(f"cross-encoder:{model_dir}")


# ----------------------------------------------------------------------------- long documents


def test_long_document_is_windowed_within_the_models_limit(qwen_dir: Path, hand: HandScorer) -> None:
    ce = backend(f"cross-encoder:{qwen_dir}?instruction={INSTRUCTION}")
    windowing = ce.windowing()
    assert windowing is not None and ce.max_length == 128
    assert hand.length(QUERY, LONG_DOC, INSTRUCTION) > 128  # the whole document would be cut
    expansion = expand(QUERY, [DOCS[0], LONG_DOC], windowing)
    assert expansion.windows[0] == 1 and expansion.windows[1] > 1 and expansion.cut == [False, False]
    windows = expansion.texts[1:]
    for window in windows:  # every window's full prompt (template + instruction + query) fits
        assert hand.length(QUERY, window, INSTRUCTION) <= 128
    assert " ".join(windows[-1].split()[-3:]) == " ".join(LONG_DOC.split()[-3:])  # the end is scored

    result = {r.index: r for r in Reranker(f"cross-encoder:{qwen_dir}?instruction={INSTRUCTION}")
              .rerank(QUERY, [DOCS[0], LONG_DOC])}
    best = max(hand.score(QUERY, w, INSTRUCTION)[0] for w in windows)
    assert result[1].score == pytest.approx(best, abs=1e-5)  # aggregate=max over the windows


def test_max_length_option_shrinks_the_windows(qwen_dir: Path, hand: HandScorer) -> None:
    ce = backend(f"cross-encoder:{qwen_dir}?max_length=100")
    windowing = ce.windowing()
    assert windowing is not None and ce.max_length == 100
    expansion = expand(QUERY, [LONG_DOC], windowing)
    assert all(hand.length(QUERY, w) <= 100 for w in expansion.texts)


# ----------------------------------------------------------------------------- instruction-less models


def test_bert_cross_encoder_warns_once_and_ignores_the_instruction(tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    bert = build_tiny_cross_encoder(tmp_path / "bert")
    plain = Reranker(f"cross-encoder:{bert}").rerank(QUERY, DOCS)
    with caplog.at_level(logging.WARNING, logger="swaprank"):
        instructed = Reranker(f"cross-encoder:{bert}?instruction={INSTRUCTION}").rerank(QUERY, DOCS)
        registry.default_registry().close()
        Reranker(f"cross-encoder:{bert}?instruction={INSTRUCTION}").rerank(QUERY, DOCS)
    warnings = [r for r in caplog.records if "ignores instruction=" in r.getMessage()]
    assert len(warnings) == 1
    assert "takes no instruction" in warnings[0].getMessage() and str(bert) in warnings[0].getMessage()
    assert [(r.index, r.score) for r in instructed] == [(r.index, r.score) for r in plain]


def test_warn_once_helper_logs_a_key_once(caplog: pytest.LogCaptureFixture) -> None:
    spec = parse_spec("cross-encoder:some/model?instruction=x")
    with caplog.at_level(logging.WARNING, logger="swaprank"):
        assert notices.warn_instruction_ignored(spec, "no prompt") is True
        assert notices.warn_instruction_ignored(spec, "no prompt") is False
        assert notices.warn_instruction_ignored(spec, "another reason") is True
    assert len([r for r in caplog.records if "ignores instruction=" in r.getMessage()]) == 2


# ----------------------------------------------------------------------------- the fast CPU path


@pytest.mark.parametrize("options", ["runtime=onnx", "runtime=openvino", "quantize=int8",
                                     "runtime=openvino&quantize=int8"])
def test_fast_path_runtimes_are_refused_for_llm_rerankers(qwen_dir: Path, options: str) -> None:
    with pytest.raises(ConfigError, match="LLM"):
        Reranker(f"cross-encoder:{qwen_dir}?{options}").rerank(QUERY, DOCS)


def test_bf16_falls_back_to_torch(qwen_dir: Path, hand: HandScorer) -> None:
    ce = backend(f"cross-encoder:{qwen_dir}?precision=bf16")
    assert (ce.plan.runtime, ce.plan.precision, ce.plan.quantize) == ("torch", "bf16", "none")
    assert ce.artifact is None
    scores = ce.score(QUERY, DOCS)
    for i, doc in enumerate(DOCS):
        assert 0.0 <= scores.normalized[i] <= 1.0
        assert scores.normalized[i] == pytest.approx(1 / (1 + math.exp(-scores.raw[i])), abs=1e-6)
        assert scores.normalized[i] == pytest.approx(hand.score(QUERY, doc)[0], abs=0.05)  # bf16 rounding


def test_export_refuses_a_causal_lm(qwen_dir: Path, tmp_path: Path) -> None:
    # What `swaprank export` (and an uncached hub id asking for the fast path) reaches.
    from swaprank.backends.fastpath.export import build_artifact

    with pytest.raises(ConfigError, match="LLM"):
        build_artifact(str(qwen_dir), tmp_path, runtime="onnx", precision="fp32", quantize="none",
                       source_digest="test")


# ----------------------------------------------------------------------------- every surface, one policy


def test_through_both_adapters_the_cli_and_eval_with_instruction(qwen_dir: Path, hand: HandScorer, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from langchain_core.documents import Document as LCDocument
    from llama_index.core.schema import MetadataMode, NodeWithScore, TextNode

    from swaprank.cli import main
    from swaprank.langchain import RerankCompressor
    from swaprank.llama_index import RerankPostprocessor
    from tests.test_eval_metrics import eval_row

    instruction = "Given a claim, find passages that support it"
    spec = f"cross-encoder:{qwen_dir}?instruction={instruction.replace(' ', '%20')}"
    expected = [hand.score(QUERY, d, instruction=instruction)[0] for d in DOCS]
    order = sorted(range(len(DOCS)), key=lambda i: -expected[i])[:2]

    docs = RerankCompressor(model=spec, top_n=2).compress_documents([LCDocument(page_content=d) for d in DOCS], QUERY)
    assert [d.page_content for d in docs] == [DOCS[i] for i in order]
    assert [d.metadata["relevance_score"] for d in docs] == pytest.approx([expected[i] for i in order], abs=1e-5)
    nodes = RerankPostprocessor(model=spec, top_n=2, metadata_mode=MetadataMode.NONE).postprocess_nodes(
        [NodeWithScore(node=TextNode(text=d, id_=f"n{i}")) for i, d in enumerate(DOCS)], query_str=QUERY)
    assert [n.node.node_id for n in nodes] == [f"n{i}" for i in order]

    assert main(["rerank", "--model", spec, "-q", QUERY, "--top-n", "2", *DOCS]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["index"] for line in lines] == order
    eval_row(spec, tmp_path)
