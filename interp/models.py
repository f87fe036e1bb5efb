"""`Model`: one causal LM, its tokenizer, and two engines on the same weights.

    >>> import interp
    >>> model = interp.load("world-base")                      # doctest: +SKIP
    >>> logits = model.forward("The capital of Avaria is")     # doctest: +SKIP
    >>> with model.intervene(interp.PruneHeads(["L1H0"])):     # doctest: +SKIP
    ...     text = model.generate("The capital of Avaria is", max_new_tokens=3)

The Hugging Face module (`model.hf`) is never modified by `interp`: interventions live on the
`Model` and apply to its `forward`, `run_with_cache` and `generate`, on the engine chosen by
``backend=`` ("transformer_lens" or "nnsight"; the model's default otherwise).
"""

from __future__ import annotations

import hashlib
import json
from typing import Iterable, Optional, Sequence, Union

import torch

from .activation_cache import ActivationCache, CacheKeyError
from .arch import SITES, arch_spec, out_weight_per_head
from .backends.plan import EditContext, RunPlan
from .errors import ArgumentTypeError, InvalidArgumentError
from .heads import Head, check_heads, parse_heads
from .interventions import Intervention, InterventionError
from .lifetime import Intervening, InterventionNotEnteredWarning, check_once, combine
from .loading import load_hf
from .loading.weights_check import warn_non_finite
from .run_args import (
    BACKENDS,
    UnknownSiteError,
    check_backend,
    check_count,
    check_flag,
    layer_indices,
    site_names,
)
from .tokens import PromptError, Prompts, Tokens, to_tokens

__all__ = [
    "Model",
    "load",
    "BACKENDS",
    "ActivationCache",
    "CacheKeyError",
    "UnknownSiteError",
    "InterventionNotEnteredWarning",
]


def load(
    spec: str, *, device="cpu", dtype=None, revision: Optional[str] = None, backend: str = "nnsight"
) -> "Model":
    """Load a causal LM: a HF id, a local HF folder, a ``.gguf`` file, or a zoo name.

    >>> model = interp.load("world-base")  # doctest: +SKIP
    """
    hf, tokenizer, name = load_hf(spec, dtype=dtype, device=device, revision=revision)
    warn_non_finite(hf, name)
    return Model(hf, tokenizer, name=name, backend=backend)


class Model:
    """A causal LM with head-level access. Build it with `interp.load` or from a HF module."""

    def __init__(
        self, hf: torch.nn.Module, tokenizer, *, name: str = "model", backend: str = "nnsight"
    ):
        self.architecture, self.spec = arch_spec(hf)
        self.hf = hf.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.backend = check_backend(backend)
        self._active: list[Intervention] = []
        self._means_cache: dict[str, torch.Tensor] = {}
        self._engines: dict[str, object] = {}
        self.meters: list = []  # `interp.cost.measure_cost` meters watching this model
        config = hf.config
        self.n_layers = int(config.num_hidden_layers)
        self.n_heads = int(config.num_attention_heads)
        self.n_kv_heads = int(getattr(config, "num_key_value_heads", None) or self.n_heads)
        self.d_model = int(config.hidden_size)
        self.d_head = int(getattr(config, "head_dim", None) or self.d_model // self.n_heads)
        self.n_ctx = int(
            getattr(config, "max_position_embeddings", None)
            or getattr(config, "n_positions", None)
            or 2048
        )
        self.vocab_size = int(config.vocab_size)

    def __repr__(self) -> str:
        return (
            f"Model({self.name!r}, {self.architecture}, layers={self.n_layers}, "
            f"heads={self.n_heads}, "
            f"kv_heads={self.n_kv_heads}, d_head={self.d_head}, backend={self.backend!r})"
        )

    # --- structure -------------------------------------------------------------------------

    @property
    def device(self) -> torch.device:
        return next(self.hf.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.hf.parameters()).dtype

    def layer_modules(self):
        return self.hf.get_submodule(self.spec.layers)

    def attention_modules(self) -> list[torch.nn.Module]:
        return [getattr(layer, self.spec.attn) for layer in self.layer_modules()]

    def w_out(self, layer: int) -> torch.Tensor:
        """W_O of one layer as [n_heads, d_head, d_model]."""
        out = getattr(self.attention_modules()[layer], self.spec.out)
        return out_weight_per_head(self.spec, out, self.n_heads)

    @property
    def final_norm(self) -> torch.nn.Module:
        return self.hf.get_submodule(self.spec.final_norm)

    @property
    def unembed(self) -> torch.nn.Module:
        return self.hf.get_submodule(self.spec.unembed)

    def heads(self, specs) -> tuple[Head, ...]:
        """Parse and validate heads against this model (error states the valid range)."""
        heads = parse_heads(specs)
        check_heads(heads, self.n_layers, self.n_heads)
        return heads

    def all_heads(self) -> list[Head]:
        return [Head(l, h) for l in range(self.n_layers) for h in range(self.n_heads)]

    def info(self) -> dict:
        return {
            "name": self.name,
            "architecture": self.architecture,
            "family": self.spec.family,
            "n_layers": self.n_layers,
            "n_heads": self.n_heads,
            "n_kv_heads": self.n_kv_heads,
            "d_head": self.d_head,
            "d_model": self.d_model,
            "n_ctx": self.n_ctx,
            "vocab_size": self.vocab_size,
            "dtype": str(self.dtype).replace("torch.", ""),
            "device": str(self.device),
            "sites": list(SITES),
            "backends": list(BACKENDS),
        }

    # --- engines ---------------------------------------------------------------------------

    def engine(self, backend: Optional[str] = None):
        """The engine object (built lazily, once) for `backend` or the model's default."""
        name = check_backend(backend or self.backend)
        if name not in self._engines:
            # lazy: a backend imports its library (transformer-lens 0.5 s, nnsight); a model
            # pays only for the backends it runs on
            if name == "transformer_lens":
                from .backends.transformer_lens import TransformerLensBackend as cls  # lazy
            else:
                from .backends.nnsight import NNsightBackend as cls  # lazy, as above
            self._engines[name] = cls(self)
        return self._engines[name]

    @property
    def bridge(self):
        """The transformer-lens 4 `TransformerBridge` over this model's weights (built on first
        use)."""
        return self.engine("transformer_lens").bridge

    @property
    def envoy(self):
        """The nnsight envoy over `model.hf` (built on first use)."""
        return self.engine("nnsight").envoy

    # --- tokens ----------------------------------------------------------------------------

    @property
    def prepends_bos(self) -> bool:
        return self.tokenizer.bos_token_id is not None

    @property
    def pad_token_id(self) -> int:
        for candidate in (
            self.tokenizer.pad_token_id,
            self.tokenizer.eos_token_id,
            self.tokenizer.bos_token_id,
        ):
            if candidate is not None:
                return int(candidate)
        return 0

    def to_tokens(self, prompts: Prompts, prepend_bos: Optional[bool] = None) -> Tokens:
        """Left-padded token batch for a prompt or prompts (BOS prepended when the model has
        one)."""
        tokens = to_tokens(
            self.tokenizer,
            prompts,
            prepend_bos=self.prepends_bos if prepend_bos is None else prepend_bos,
            pad_id=self.pad_token_id,
            max_len=self.n_ctx,
            device=self.device,
        )
        top = int(tokens.input_ids.max())
        if top >= self.vocab_size or int(tokens.input_ids.min()) < 0:
            raise PromptError(
                f"token id {top} is outside the vocabulary (0..{self.vocab_size - 1}); the ids "
                "must come from this model's tokenizer (model.to_tokens(text))"
            )
        return tokens

    def to_str(self, tokens) -> list[str]:
        """Token strings of a 1-D id sequence (one entry per token)."""
        ids = tokens.tolist() if isinstance(tokens, torch.Tensor) else list(tokens)
        return [self.tokenizer.decode([i]) for i in ids]

    def decode(self, ids) -> str:
        return self.tokenizer.decode(ids.tolist() if isinstance(ids, torch.Tensor) else ids)

    # --- interventions ---------------------------------------------------------------------

    @property
    def active_interventions(self) -> tuple[Intervention, ...]:
        return tuple(self._active)

    def apply(self, *interventions: Intervention) -> Intervention:
        """Keep interventions on until `remove` (returns what was applied, for `remove`).

        An intervention is on at most once. Applying one that is already on (the same object
        or an equal one, alone or as part of a combination), or giving the same one twice, is
        refused with `InterventionError`: it would stack (``ScaleValues(h, 2.0)`` twice scales
        by 4). To change an applied intervention, ``model.remove(applied)`` it first."""
        combined = combine(interventions)
        combined.edits(self)  # validate now, not at the next forward
        check_once(self, combined.parts(), given="model.apply")
        self._active.append(combined)
        return combined

    def remove(self, intervention: Optional[Intervention] = None) -> None:
        """Remove one applied intervention (the object `apply` returned, or an equal one), or all
        of them when called without one."""
        if intervention is None:
            self._active.clear()
            return
        if not isinstance(intervention, Intervention):
            raise ArgumentTypeError(
                f"model.remove takes the intervention model.apply returned (or nothing, to "
                f"remove all), got {type(intervention).__name__} {intervention!r}"
            )
        for i, active in enumerate(self._active):
            if active is intervention or active == intervention:
                del self._active[i]
                return
        for active in self._active:
            if any(part is intervention or part == intervention for part in active.parts()):
                raise InterventionError(
                    f"{intervention!r} is one part of the applied {active!r}; remove the "
                    "whole combination (the object model.apply returned)"
                )
        raise InterventionError(
            f"{intervention!r} is not applied to {self.name}; model.active_interventions lists "
            "what is applied (remove one of those, or call model.remove() to remove all)"
        )

    def intervene(self, *interventions: Intervention) -> "Intervening":
        """Apply interventions inside a ``with`` block; they are removed on exit, even on error.

        The rule of `apply` holds: an intervention is on at most once, so nesting
        ``with model.intervene(r):`` inside a block that already applies `r` (or re-entering
        the same block) raises `InterventionError` at the inner ``with``, and the outer block
        keeps `r` on until its own exit. Different interventions nest and are removed in turn.

        Without ``with`` nothing is applied, and an `InterventionNotEnteredWarning` (a
        `RuntimeWarning`) says so when the unused object is garbage-collected; use `apply` to
        keep interventions on."""
        return Intervening(self, interventions)

    # --- running ---------------------------------------------------------------------------

    def edits(self, interventions=None, use_active: bool = True) -> list:
        """The hook edits (``interp.backends.plan`` ``Edit`` objects) a forward pass applies: those
        of the interventions applied to this model (`apply` / `intervene`, when ``use_active``)
        followed by those of ``interventions`` (one `Intervention` or an iterable of them).

        Put them in a ``RunPlan`` for `run_plan`; the list is new on each call, so a caller may
        append its own edits (a capture, a patch) without changing the model.
        """
        items = list(self._active) if check_flag("use_interventions", use_active) else []
        if interventions is not None and not isinstance(interventions, Intervention):
            if isinstance(interventions, (str, bytes)) or not isinstance(interventions, Iterable):
                raise ArgumentTypeError(
                    f"interventions takes Intervention objects, got {type(interventions).__name__} "
                    f"{interventions!r}; e.g. interventions=PruneHeads(['L1H0'])"
                )
            interventions = list(interventions)
            for item in interventions:
                if not isinstance(item, Intervention):
                    raise ArgumentTypeError(
                        f"interventions takes Intervention objects, got {type(item).__name__} "
                        f"{item!r}; e.g. interventions=[PruneHeads(['L1H0']), "
                        "ScaleValues('L2H3', 2.0)]"
                    )
        if interventions is not None:
            given = (
                interventions.parts()
                if isinstance(interventions, Intervention)
                else [i for x in interventions for i in x.parts()]
            )
            check_once(self, given, given="interventions=", use_active=use_active)
            items.extend(given)
        return [edit for item in items for edit in item.edits(self)]

    _edits = edits  # the old private name, kept until circuits/ calls `edits`

    def run_plan(
        self,
        tokens: Tokens,
        plan: RunPlan,
        *,
        backend=None,
        past_key_values=None,
        use_cache: bool = False,
        position_ids=None,
        attention_mask=None,
        logits_to_keep: int = 0,
    ):
        """Low-level: one forward pass of the HF module under `plan`; returns the HF output.

        attention_mask covers the cached positions and the new tokens (default: the tokens'
        own mask); logits_to_keep > 0 computes the logits of the last that many positions only
        (0: every position)."""
        mask = tokens.attention_mask if attention_mask is None else attention_mask
        past = 0 if past_key_values is None else past_key_values.get_seq_length()
        ctx = EditContext(key_mask=mask.bool(), q_offset=past)
        kwargs = dict(
            input_ids=tokens.input_ids,
            use_cache=use_cache,
            position_ids=tokens.position_ids if position_ids is None else position_ids,
        )
        if bool((mask == 0).any()):
            kwargs["attention_mask"] = mask
        if past_key_values is not None:
            kwargs["past_key_values"] = past_key_values
        if logits_to_keep:
            kwargs["logits_to_keep"] = int(logits_to_keep)
        self.record_forward(tuple(tokens.input_ids.shape), past)
        return self.engine(backend).run(plan, ctx, **kwargs)

    def record_forward(self, shape: tuple, past: int = 0) -> None:
        """Tell the cost meters (`interp.cost`) about a forward over ids of `shape` [batch, new
        tokens] after `past` cached positions. `run_plan` calls it; code that runs the HF
        module itself must too."""
        for meter in self.meters:
            meter.record(shape, past)

    def forward(
        self,
        prompts: Prompts,
        *,
        interventions=None,
        backend: Optional[str] = None,
        use_interventions: bool = True,
        grad: bool = False,
    ) -> torch.Tensor:
        """Logits [batch, pos, vocab] for prompts, under applied (+ given) interventions."""
        tokens = self.to_tokens(prompts)
        plan = RunPlan(self.edits(interventions, use_interventions))
        with torch.set_grad_enabled(grad):
            return self.run_plan(tokens, plan, backend=backend).logits

    __call__ = forward

    def run_with_cache(
        self,
        prompts: Prompts,
        *,
        sites: Sequence[str] = ("z",),
        layers: Optional[Iterable[int]] = None,
        interventions=None,
        backend: Optional[str] = None,
        use_interventions: bool = True,
        grad: bool = False,
    ) -> tuple[torch.Tensor, ActivationCache]:
        """Logits and the requested head sites of every (or the given) layer.

        `sites` is one site name or several; `layers` one layer index or several."""
        sites = site_names(sites)
        layers = layer_indices(layers, self.n_layers)
        tokens = self.to_tokens(prompts)
        plan = RunPlan(
            self.edits(interventions, use_interventions),
            capture=[(l, s) for l in layers for s in sites],
            w_out=self.w_out,
        )
        with torch.set_grad_enabled(grad):
            output = self.run_plan(tokens, plan, backend=backend)
        return output.logits, ActivationCache(plan.captured(), tokens)

    def generate(self, prompts: Prompts, max_new_tokens: int = 32, **kwargs):
        """Continue prompts; see `interp.generation.generate` for the options."""
        # lazy: generation reads transformers' cache and attention modules (1.1 s to import)
        from .generation import check_option_names, generate

        check_option_names(kwargs)
        return generate(self, prompts, max_new_tokens=max_new_tokens, **kwargs)

    # --- reference activations -------------------------------------------------------------

    def head_means(
        self, reference: Union[Sequence[str], torch.Tensor], batch_size: int = 16
    ) -> torch.Tensor:
        """Mean z of every head over all real tokens of `reference`: [n_layers, n_heads, d_head].

        `reference` is texts or token ids ([batch, pos] or [pos]). Cached on the model by a hash
        of the reference, so repeated mean-ablations cost nothing.
        """
        if isinstance(reference, torch.Tensor):
            texts = reference if reference.dim() == 2 else reference[None]
            digest = texts.cpu().numpy().tobytes() + str(tuple(texts.shape)).encode()
        else:
            texts = [reference] if isinstance(reference, str) else list(reference)
            digest = json.dumps(texts).encode()
        if len(texts) == 0:
            raise InvalidArgumentError("head_means needs at least one reference text")
        if not isinstance(reference, torch.Tensor) and any(not str(t).strip() for t in texts):
            raise InvalidArgumentError(
                "head_means got an empty reference text: its mean would be over the "
                "BOS token alone; give real texts (the prompts the heads are ablated on)"
            )
        check_count("head_means batch_size", batch_size)
        key = hashlib.sha256(digest).hexdigest()[:16]
        if key not in self._means_cache:
            total = torch.zeros(self.n_layers, self.n_heads, self.d_head, dtype=torch.float64)
            count = 0
            for start in range(0, len(texts), batch_size):
                _, cache = self.run_with_cache(
                    texts[start : start + batch_size], sites=("z",), use_interventions=False
                )
                mask = cache.tokens.attention_mask.bool()
                for layer in range(self.n_layers):
                    total[layer] += cache[layer, "z"][mask].double().sum(0).cpu()
                count += int(mask.sum())
            self._means_cache[key] = (total / count).to(self.dtype)
        return self._means_cache[key]
