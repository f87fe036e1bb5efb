"""Text generation under interventions, with or without the KV cache.

The loop is ours, not Hugging Face's `generate`, so that every step runs through the same
engine and the same edits as a single forward pass. With ``use_cache=True`` (the default) the
prompt is run once and each new token costs one one-position step; with ``use_cache=False``
the whole sequence is recomputed at every step. Both give the same tokens under the same
interventions (the test suite checks this), because every edit sees the absolute positions
(`EditContext.q_offset`) and the padding mask of the keys.
"""

from __future__ import annotations

import inspect
import math
import numbers
import os
import sys
import warnings
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Optional

import torch

from .backends.plan import RunPlan
from .errors import ArgumentTypeError, InvalidArgumentError
from .kv.cache import policy_generation
from .tokens import Prompts, Tokens

__all__ = ["generate", "Generation", "check_option_names", "OPTIONS"]


@dataclass
class Generation:
    """Prompt and continuation tokens of each row, and the decoded continuations."""

    tokens: torch.Tensor  # [batch, prompt_len + new], left-padded prompts
    prompt_length: int
    attention_mask: torch.Tensor  # [batch, prompt_len + new]
    texts: list[str]
    kv_cache_bytes: Optional[int] = field(
        default=None
    )  # bytes the KV policy's cache held at the end

    @property
    def new_tokens(self) -> torch.Tensor:
        return self.tokens[:, self.prompt_length :]

    def __str__(self) -> str:
        return self.texts[0] if len(self.texts) == 1 else repr(self.texts)


def generate(
    model,
    prompts: Prompts,
    max_new_tokens: int = 32,
    *,
    interventions=None,
    backend: Optional[str] = None,
    use_interventions: bool = True,
    use_cache: bool = True,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_k: Optional[int] = None,
    seed: Optional[int] = None,
    stop_at_eos: bool = False,
    kv_policy: Any = None,
) -> Generation:
    """Greedy (or sampled) continuation of prompts under applied (+ given) interventions.

    `kv_policy` (an `interp.kv.HeadKVPolicy`) keeps the full KV cache only for the kv heads it
    names and sink + window positions for the others (`interp.kv.cache`); the cache it held at the
    end is measured in ``Generation.kv_cache_bytes``. Its sink counts cache slots, so a policy
    with a sink refuses left-padded prompts (their sink would be padding).

    >>> out = model.generate("Once upon a time", max_new_tokens=20)   # doctest: +SKIP
    >>> print(out.texts[0])                                           # doctest: +SKIP
    """
    _check_options(model, max_new_tokens, do_sample, temperature, top_k, seed)
    tokens = model.to_tokens(prompts)
    if tokens.input_ids.shape[1] + max_new_tokens > model.n_ctx:
        raise InvalidArgumentError(
            f"prompt ({tokens.input_ids.shape[1]} tokens) + {max_new_tokens} new tokens "
            f"exceed the context window of {model.n_ctx}; ask for fewer tokens"
        )
    edits = model.edits(interventions, use_interventions)
    generator = torch.Generator(device="cpu").manual_seed(seed) if seed is not None else None
    ids, mask = tokens.input_ids, tokens.attention_mask
    finished = torch.zeros(ids.shape[0], dtype=torch.bool, device=ids.device)
    past = None
    step_input = tokens
    route = (
        nullcontext()
        if kv_policy is None
        else policy_generation(model, kv_policy, mask, use_cache=use_cache, backend=backend)
    )
    with torch.no_grad(), route as cache:
        past = cache
        for _ in range(max_new_tokens):
            positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, -step_input.input_ids.shape[1] :]
            output = model.run_plan(
                step_input,
                RunPlan(edits),
                backend=backend,
                use_cache=use_cache,
                past_key_values=past,
                position_ids=positions,
                attention_mask=mask,
                logits_to_keep=1,  # only the last position's logits choose the next token
            )
            next_id = _choose(output.logits[:, -1], do_sample, temperature, top_k, generator)
            if stop_at_eos and model.tokenizer.eos_token_id is not None:
                next_id = torch.where(finished, model.pad_token_id, next_id)
                finished |= next_id == model.tokenizer.eos_token_id
            ids = torch.cat([ids, next_id[:, None]], dim=1)
            mask = torch.cat([mask, torch.ones_like(next_id)[:, None]], dim=1)
            if use_cache:
                past = output.past_key_values
                step_input = Tokens(next_id[:, None], torch.ones_like(next_id)[:, None])
            else:
                step_input = Tokens(ids, mask)
            if stop_at_eos and bool(finished.all()):
                break
    prompt_len = tokens.input_ids.shape[1]
    texts = [model.decode(row[prompt_len:]) for row in ids]
    return Generation(ids, prompt_len, mask, texts, None if cache is None else cache.stored_bytes())


class SamplingOptionWarning(UserWarning):
    """A sampling option given to greedy decoding, where it has no effect."""


_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _caller_stacklevel() -> int:
    """The `warnings.warn` stacklevel of the first frame outside the interp package, so that a
    warning names the user's line (``model.generate`` and ``generate`` alike)."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    return level


OPTIONS = tuple(p for p in inspect.signature(generate).parameters if p not in ("model", "prompts"))
"""The keyword options `generate` takes (read once from its signature)."""


def check_option_names(kwargs) -> None:
    """Refuse an option `generate` does not have (``top_p``), naming the ones it has, instead of
    Python's bare "unexpected keyword argument"."""
    unknown = sorted(set(kwargs) - set(OPTIONS))
    if unknown:
        raise ArgumentTypeError(
            f"generate has no option {', '.join(map(repr, unknown))}; its options are "
            f"{', '.join(OPTIONS)} (see interp.generation.generate)"
        )


def _check_options(model, max_new_tokens, do_sample: bool, temperature, top_k, seed) -> None:
    """Refuse option values that would fail deep in the loop or be silently wrong."""
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
        raise ArgumentTypeError(
            f"seed must be an int (or None for fresh randomness), got {type(seed).__name__} "
            f"{seed!r}"
        )
    if not isinstance(do_sample, bool):
        raise ArgumentTypeError(
            f"do_sample must be True or False, got {type(do_sample).__name__} {do_sample!r}"
        )
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real):
        raise ArgumentTypeError(
            f"temperature must be a number, got {type(temperature).__name__} {temperature!r}"
        )
    if not math.isfinite(temperature) or (do_sample and temperature <= 0):
        raise InvalidArgumentError(
            f"temperature must be > 0 when sampling, got {temperature}"
            if math.isfinite(temperature)
            else f"temperature must be a finite number > 0, got {temperature}"
        )
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int):
        raise ArgumentTypeError(
            f"max_new_tokens must be an int, got {type(max_new_tokens).__name__} "
            f"{max_new_tokens!r}"
        )
    if max_new_tokens < 1:
        raise InvalidArgumentError(
            f"max_new_tokens must be >= 1, got {max_new_tokens}: it is how many tokens to add "
            "to each prompt (for the logits of the prompt alone, use model.forward)"
        )
    if top_k is not None:
        if isinstance(top_k, bool) or not isinstance(top_k, int):
            raise ArgumentTypeError(
                f"top_k must be an int or None, got {type(top_k).__name__} {top_k!r}"
            )
        if not 1 <= top_k <= model.vocab_size:
            raise InvalidArgumentError(
                f"top_k must be in 1..{model.vocab_size} (the vocabulary), got {top_k}"
            )
    if not do_sample and (top_k is not None or temperature != 1.0):
        warnings.warn(
            "top_k and temperature only apply when sampling; pass do_sample=True to sample "
            "(greedy decoding ignores them)",
            SamplingOptionWarning,
            stacklevel=_caller_stacklevel(),
        )


def _choose(
    logits: torch.Tensor, do_sample: bool, temperature: float, top_k: Optional[int], generator
) -> torch.Tensor:
    if not do_sample:
        return logits.argmax(-1)
    if temperature <= 0:
        raise InvalidArgumentError(f"temperature must be > 0 when sampling, got {temperature}")
    logits = logits.float() / temperature
    if top_k is not None:
        kth = logits.topk(top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, -1)
    return torch.multinomial(probs.cpu(), 1, generator=generator).squeeze(-1).to(logits.device)
