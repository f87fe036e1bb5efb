"""interp: find the heads that do the work in a causal language model, and act on them.

Load any causal LM (HF id, local folder, GGUF file, or a zoo organism), read and write
per-head sites on two engines (transformer-lens 4's TransformerBridge and nnsight) that
agree to 1e-5, and apply head interventions (pruning, value scaling, patching) in forward
passes and cached generation.

    >>> import interp
    >>> model = interp.load("world-base")                                  # doctest: +SKIP
    >>> recipe = interp.PruneHeads(["L2H1"]) + interp.ScaleValues("L3H0", 2.0)
    >>> with model.intervene(recipe):                                      # doctest: +SKIP
    ...     print(model.generate("Q : what is the capital of Avaria ? A :", 4))
"""

from .arch import SITES, UnsupportedArchitectureError
from .heads import Head, HeadIndexError, parse_heads
from .interventions import Compose, Intervention, PatchHeads, PruneHeads, ScaleValues
from .loading import GGUFMetadataError, ModelNotAvailableError, RealModelNotInstalledError
from .models import BACKENDS, ActivationCache, Model, UnknownSiteError, load
from .tokens import PromptError, Tokens
from .version import __version__

__all__ = [
    "__version__",
    "load",
    "Model",
    "BACKENDS",
    "SITES",
    "ActivationCache",
    "Tokens",
    "Head",
    "parse_heads",
    "HeadIndexError",
    "Intervention",
    "PruneHeads",
    "ScaleValues",
    "PatchHeads",
    "Compose",
    "ModelNotAvailableError",
    "GGUFMetadataError",
    "PromptError",
    "UnknownSiteError",
    "UnsupportedArchitectureError",
    "RealModelNotInstalledError",
]
