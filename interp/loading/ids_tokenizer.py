"""`IdsOnlyTokenizer`: what a model folder without tokenizer files loads with.

Weights and config.json are enough for analyses that work on token ids alone (induction on
random repeated sequences). The stand-in carries the special ids the config names (BOS, EOS,
PAD) and the vocabulary size; turning text into ids or ids into text raises
`TokenizerMissingError` naming the files to copy in, at the first use and not at load.

    >>> tok = IdsOnlyTokenizer(vocab_size=10, bos_token_id=1, eos_token_id=2, folder="m")
    >>> tok.all_special_ids
    [1, 2]
    >>> tok("hello")
    Traceback (most recent call last):
    ...
    interp.loading.errors.TokenizerMissingError: m has no tokenizer files ...
"""

from __future__ import annotations

from typing import Optional

from .errors import TokenizerMissingError

__all__ = ["IdsOnlyTokenizer", "missing_tokenizer_message"]


def missing_tokenizer_message(folder, files) -> str:
    """What to do about a folder with weights and no tokenizer."""
    return (
        f"{folder} has no tokenizer files (none of {', '.join(files)}), so text cannot be "
        "encoded or decoded; analyses on token ids (interp induction) run without them. Copy "
        "the tokenizer files of the model it was trained from into the folder (for example "
        "with AutoTokenizer.from_pretrained(source).save_pretrained(folder))"
    )


class IdsOnlyTokenizer:
    """Special ids and vocabulary size from a model's config; no text."""

    chat_template = None  # read by interp.data.defaults to pick the NIAH template

    def __init__(
        self,
        vocab_size: int,
        bos_token_id: Optional[int] = None,
        eos_token_id: Optional[int] = None,
        pad_token_id: Optional[int] = None,
        folder: str = "the model folder",
        files: tuple = ("tokenizer.json",),
    ):
        self.vocab_size = int(vocab_size)
        self.bos_token_id, self.eos_token_id, self.pad_token_id = (
            bos_token_id,
            eos_token_id,
            pad_token_id,
        )
        self._message = missing_tokenizer_message(folder, files)

    @classmethod
    def from_config(cls, config, folder: str, files: tuple) -> "IdsOnlyTokenizer":
        def first_id(name):  # configs may hold a list of eos ids
            value = getattr(config, name, None)
            return value[0] if isinstance(value, (list, tuple)) and value else value

        return cls(
            config.vocab_size,
            first_id("bos_token_id"),
            first_id("eos_token_id"),
            first_id("pad_token_id"),
            folder=folder,
            files=files,
        )

    @property
    def all_special_ids(self) -> list:
        ids = (self.bos_token_id, self.eos_token_id, self.pad_token_id)
        return sorted({int(i) for i in ids if i is not None})

    def __len__(self) -> int:
        return self.vocab_size

    def _refuse(self, *args, **kwargs):
        raise TokenizerMissingError(self._message)

    __call__ = encode = decode = batch_decode = convert_ids_to_tokens = _refuse
    tokenize = apply_chat_template = _refuse
