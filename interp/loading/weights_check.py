"""A look at loaded weights before anything runs on them: NaN or infinite values (a damaged or
garbage file) make every logit NaN, silently, so `interp.load` warns with the parameters' names."""

from __future__ import annotations

import warnings

import torch

__all__ = ["NonFiniteWeightsWarning", "warn_non_finite"]


class NonFiniteWeightsWarning(RuntimeWarning):
    """Some loaded weights are NaN or infinite: the model's outputs will be too."""


def warn_non_finite(module: torch.nn.Module, name: str, *, shown: int = 3) -> int:
    """Warn (NonFiniteWeightsWarning) when any parameter or buffer of `module` holds NaN or
    infinite values; returns how many tensors do.

    >>> warn_non_finite(torch.nn.Linear(2, 2), "linear")
    0
    """
    bad = []
    with torch.no_grad():
        for key, tensor in list(module.named_parameters()) + list(module.named_buffers()):
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                bad.append((key, int((~torch.isfinite(tensor)).sum())))
    if bad:
        listed = ", ".join(f"{key} ({n} values)" for key, n in bad[:shown])
        more = f" and {len(bad) - shown} more" if len(bad) > shown else ""
        warnings.warn(
            f"{name}: {len(bad)} weight tensor(s) hold NaN or infinite values: {listed}{more}; "
            "every output will be NaN. The weights file is damaged or was saved from a diverged "
            "run: re-download or re-export it",
            NonFiniteWeightsWarning,
            stacklevel=3,
        )
    return len(bad)
