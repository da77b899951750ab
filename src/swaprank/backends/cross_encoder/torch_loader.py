"""Loading a cross-encoder on torch through sentence-transformers (the exact fp32 default).

LLM rerankers (Qwen3-Reranker, mxbai-rerank v2 and the like) load here too: sentence-transformers
6 reads a ``*ForCausalLM`` checkpoint as a chat-template prompt scored by a ``LogitScore`` module,
``logit("yes") - logit("no")`` at the last position. swaprank keeps that difference as the raw
score and maps it with one sigmoid, which is exactly P(yes) = softmax over the {yes, no} logits
(never a second sigmoid on top of the model's own). ``instruction=`` is handed to the model the way
sentence-transformers 6 does it: as the ``prompt``, which a chat-template model receives as a
system message (Qwen3-Reranker's template renders it as ``<Instruct>: ...``). The fast CPU path
exports sequence-classification graphs only, so causal-LM rerankers stay on torch.
"""

from __future__ import annotations

from typing import Any

from swaprank.backends import hub
from swaprank.backends.cross_encoder.loaded import LoadedModel, score_mapping
from swaprank.backends.cross_encoder.resolve import Target
from swaprank.backends.devices import check_device_present
from swaprank.backends.fastpath.choice import Plan
from swaprank.backends.notices import warn_instruction_ignored
from swaprank.backends.optional import require
from swaprank.types import ConfigError
from swaprank.windows import TokenCounter, TokenizerCounter


def load_torch(target: Target, plan: Plan) -> LoadedModel:
    """Load ``target`` with sentence-transformers and work out its limit, prompt and score mapping."""
    ce = _cross_encoder(target, plan)
    max_length = int(getattr(ce, "max_seq_length", None) or 512)
    tokenizer = None
    hf_tokenizer = getattr(ce, "tokenizer", None)
    if hf_tokenizer is not None and getattr(hf_tokenizer, "is_fast", False):
        from swaprank.backends.fastpath.tokenize import PairTokenizer

        tokenizer = PairTokenizer(hf_tokenizer.backend_tokenizer, max_length, int(hf_tokenizer.pad_token_id or 0))
    native = "sigmoid" if type(ce.activation_fn).__name__ == "Sigmoid" else type(ce.activation_fn).__name__
    activation_fn: Any = None  # None: the model's own activation
    causal_lm = _yes_no_logit_score(ce) is not None
    if causal_lm:
        # raw = logit(yes) - logit(no), untouched; score_mapping applies the one sigmoid.
        native = "identity"
        activation_fn = require("torch", "cross-encoder").nn.Identity()
        if target.option("activation") == "identity":
            raise ConfigError(f"{target.model!r} is an LLM reranker: its raw score is the yes/no logit difference "
                              "(unbounded log-odds), so activation=identity would clip it; use auto or sigmoid")
    try:  # both render probe pairs through the model's input format (its chat template, for an LLM)
        prompt = _resolve_instruction(target, ce)
        # A prompt or a chat template wraps the pair in tokens a BERT-style pair count misses.
        templated = causal_lm or prompt is not None or _chat_template_input(ce)
        counter = _template_counter(ce, prompt) if templated else None
    except ValueError as exc:  # e.g. a chat template that drops the query or document role
        raise target.unavailable(f"could not load cross-encoder {target.model!r}: {exc}") from exc
    batch_size = target.option("batch_size") or 32

    def predict(pairs: list[tuple[str, str]]) -> list[float]:
        values = ce.predict(pairs, batch_size=batch_size, show_progress_bar=False, convert_to_numpy=True,
                            prompt=prompt, activation_fn=activation_fn)
        return [float(v) for v in values.reshape(-1).tolist()]

    return LoadedModel(predict=predict, to_unit=score_mapping(target, native), max_length=max_length, plan=plan,
                       tokenizer=tokenizer, template_counter=counter, templated=templated, causal_lm=causal_lm)


def _cross_encoder(target: Target, plan: Plan) -> Any:
    """The sentence-transformers ``CrossEncoder``, refused unless it has the one output a reranker needs."""
    local_only = hub.prepare(target.model, target.vendor)  # hub unreachable: the cache, or one error in seconds
    st = require("sentence_transformers", "cross-encoder")
    check_device_present(target.vendor, target.option("device"))
    kwargs: dict[str, Any] = {
        "device": target.option("device"),
        "max_length": target.option("max_length"),
        "trust_remote_code": target.option("trust_remote_code"),
    }
    if local_only:
        kwargs["local_files_only"] = True
    dtype = target.option("dtype") or ("bfloat16" if plan.precision == "bf16" else None)
    if dtype:
        torch = require("torch", "cross-encoder")
        kwargs["model_kwargs"] = {"dtype": getattr(torch, dtype)}
    if target.option("threads"):
        require("torch", "cross-encoder").set_num_threads(target.option("threads"))
    try:
        ce = st.CrossEncoder(target.source, **kwargs)
    except Exception as exc:  # hub unreachable, bad files...
        raise target.unavailable(f"could not load cross-encoder {target.model!r}: {type(exc).__name__}: {exc}"
                                 f"{target.hub_hint()}") from exc
    if ce.num_labels != 1:
        raise ConfigError(f"cross-encoder {target.model!r} has {ce.num_labels} output labels; a reranker needs 1")
    return ce


def _resolve_instruction(target: Target, ce: Any) -> str | None:
    """The prompt to pass to ``predict`` for ``instruction=``, or None (warning once) when the model
    cannot take one.

    A model takes an instruction when sentence-transformers 6 gives the prompt to it as part of
    its input format: a chat template that renders the system message (checked by rendering a
    probe pair with and without it), or prompts saved with the model (the instruction then takes
    the saved prompt's place, prepended to the query). A plain BERT cross-encoder has neither;
    prepending text it was never trained on would change its scores in unmeasured ways.
    """
    instruction = target.option("instruction")
    if instruction is None:
        return None
    transformer = ce[0]
    if _chat_template_input(ce):
        probe = [("query", "document")]
        with_prompt = transformer.preprocess(probe, prompt=instruction)["input_ids"]
        without = transformer.preprocess(probe)["input_ids"]
        if with_prompt.shape == without.shape and bool((with_prompt == without).all()):
            warn_instruction_ignored(target.spec, "its chat template does not render a system message")
            return None
        return str(instruction)
    if getattr(ce, "prompts", None):
        return str(instruction)
    warn_instruction_ignored(target.spec, "the model takes no instruction (no chat template with a system "
                             "message, no saved prompts)")
    return None


def _template_counter(ce: Any, prompt: str | None) -> TokenCounter | None:
    """Token counts for windows when the prompt wraps the pair: the template's own tokens (an
    empty query and document rendered with the same prompt) take the place of the ``[CLS]``/``[SEP]``
    a BERT pair adds, so a window plus the query plus the template fits ``max_length``."""
    hf_tokenizer = getattr(ce, "tokenizer", None)
    if hf_tokenizer is None or not getattr(hf_tokenizer, "is_fast", False):
        return None
    if prompt is None and hasattr(ce, "_resolve_prompt"):  # the model's saved default prompt, if any
        prompt = ce._resolve_prompt(None, None)
    features = ce[0].preprocess([("", "")], prompt=prompt)
    counter = TokenizerCounter(hf_tokenizer.backend_tokenizer)
    counter.special_tokens = int(features["attention_mask"].sum())
    return counter


def _chat_template_input(ce: Any) -> bool:
    """Whether sentence-transformers renders this model's pairs through its chat template (the
    ``message`` modality), where a prompt arrives as a system message."""
    modalities = (getattr(ce[0], "modality_config", None) if len(ce) else None) or {}
    return "message" in modalities


def _yes_no_logit_score(ce: Any) -> Any:
    """The model's ``LogitScore`` module when it scores logit(yes) - logit(no), else None.

    A ``LogitScore`` with only a true token (zerank-style) outputs one logit, not log-odds: a
    sigmoid of it is not P(yes), so such models keep their own saved activation like any other.
    """
    try:
        from sentence_transformers.cross_encoder.modules.logit_score import LogitScore
    except ImportError:  # sentence-transformers < 5.4: no causal-LM cross-encoders
        return None
    last = ce[len(ce) - 1] if len(ce) else None
    if isinstance(last, LogitScore) and last.false_token_id is not None:
        return last
    return None
