"""Tiny random models of every supported architecture, built locally from configs.

They need no download and run in milliseconds, so tests, notebooks and bug reports can use
them. Each comes with a small word-level tokenizer (one token per word).

    >>> model = tiny_model("llama")   # 2 layers, 8 query heads, 4 kv heads (GQA)
    >>> model.n_heads, model.n_kv_heads
    (8, 4)
"""

from __future__ import annotations

import torch
from tokenizers import Tokenizer, decoders, pre_tokenizers
from tokenizers.models import WordLevel
from transformers import (
    AutoModelForCausalLM,
    Gemma2Config,
    Gemma3TextConfig,
    GPT2Config,
    GPTNeoXConfig,
    LlamaConfig,
    MistralConfig,
    Olmo2Config,
    Phi3Config,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen3Config,
)

from .errors import InvalidArgumentError
from .models import Model

__all__ = ["TINY_ARCHITECTURES", "tiny_hf_model", "tiny_model", "word_tokenizer"]

TINY_WORDS = (
    "the a an of in on is was and to it he she they box key apple cat dog red blue "
    "green big small once upon time there little girl boy named played saw capital "
    "city country what where who how one two three four five six seven eight nine ten "
    ". , ? : ;"
).split()

TINY_ARCHITECTURES = (
    "gpt2",
    "gpt_neox",
    "llama",
    "qwen2",
    "mistral",
    "gemma3",
    "gemma2",
    "qwen3",
    "phi3",
    "olmo2",
)


def word_tokenizer(words=TINY_WORDS):
    """A whitespace word-level fast tokenizer with <bos>, <eos>, <pad>, <unk> at ids 0..3."""
    specials = ["<bos>", "<eos>", "<pad>", "<unk>"]
    vocab = {token: i for i, token in enumerate(specials + list(dict.fromkeys(words)))}
    backend = Tokenizer(WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
    )


def _config(arch: str, vocab: int, n_layers: int, n_ctx: int):
    common = dict(
        vocab_size=vocab,
        num_hidden_layers=n_layers,
        max_position_embeddings=n_ctx,
        hidden_size=64,
        intermediate_size=128,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=2,
    )
    if arch == "gpt2":
        return GPT2Config(
            vocab_size=vocab,
            n_layer=n_layers,
            n_head=4,
            n_embd=64,
            n_positions=n_ctx,
            bos_token_id=0,
            eos_token_id=1,
            architectures=["GPT2LMHeadModel"],
        )
    if arch == "gpt_neox":
        return GPTNeoXConfig(
            num_attention_heads=4, rotary_pct=0.25, architectures=["GPTNeoXForCausalLM"], **common
        )
    if arch == "llama":
        return LlamaConfig(
            num_attention_heads=8,
            num_key_value_heads=4,
            architectures=["LlamaForCausalLM"],
            **common,
        )
    if arch == "qwen2":
        return Qwen2Config(
            num_attention_heads=8,
            num_key_value_heads=2,
            architectures=["Qwen2ForCausalLM"],
            **common,
        )
    if arch == "mistral":
        return MistralConfig(
            num_attention_heads=8,
            num_key_value_heads=2,
            sliding_window=None,
            architectures=["MistralForCausalLM"],
            **common,
        )
    if arch in _NEWER:
        return _newer_config(arch, common)
    raise InvalidArgumentError(
        f"unknown tiny architecture {arch!r}; choose one of {TINY_ARCHITECTURES}"
    )


_NEWER = ("gemma3", "gemma2", "qwen3", "phi3", "olmo2")
_GEMMA = dict(
    num_attention_heads=4,
    num_key_value_heads=1,
    head_dim=32,
    sliding_window=4,
    layer_types=["sliding_attention", "full_attention"],
    query_pre_attn_scalar=32,
)


def _newer_config(arch: str, common: dict):
    """Tiny configs exercising what the newer families add: one kv head, head_dim != d_model /
    n_heads, sliding-window layers (window 4, shorter than the test prompts), q/k norms, logit
    soft-capping, scaled embeddings, a fused qkv projection (Phi-3)."""
    if arch == "gemma3":
        return Gemma3TextConfig(architectures=["Gemma3ForCausalLM"], **_GEMMA, **common)
    if arch == "gemma2":
        return Gemma2Config(
            architectures=["Gemma2ForCausalLM"],
            attn_logit_softcapping=50.0,
            final_logit_softcapping=30.0,
            **_GEMMA,
            **common,
        )
    if arch == "qwen3":
        return Qwen3Config(
            num_attention_heads=8,
            num_key_value_heads=2,
            head_dim=16,
            architectures=["Qwen3ForCausalLM"],
            **common,
        )
    if arch == "phi3":
        return Phi3Config(
            num_attention_heads=8,
            num_key_value_heads=4,
            sliding_window=None,
            architectures=["Phi3ForCausalLM"],
            **common,
        )
    return Olmo2Config(
        num_attention_heads=8, num_key_value_heads=4, architectures=["Olmo2ForCausalLM"], **common
    )


def tiny_hf_model(
    arch: str = "llama", *, n_layers: int = 2, n_ctx: int = 128, seed: int = 0, vocab: int = None
):
    """A randomly initialised HF causal LM of `arch` (weights scaled up so heads differ)."""
    tokenizer = word_tokenizer()
    config = _config(arch, vocab or len(tokenizer), n_layers, n_ctx)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config).eval()
    with torch.no_grad():  # default init is tiny; widen it so attention patterns are not flat
        for param in model.parameters():
            if param.dim() == 2:
                param.normal_(0, 0.15)
    return model, tokenizer


def tiny_model(arch: str = "llama", *, backend: str = "nnsight", **kwargs):
    """An `interp.Model` around `tiny_hf_model(arch)`."""
    hf, tokenizer = tiny_hf_model(arch, **kwargs)
    return Model(hf, tokenizer, name=f"tiny-{arch}", backend=backend)
