"""The templates that put a NIAH question after its haystack (`interp.data.niah` builds the
prompts): the paper's, a completion prefix for models such as the zoo's, and the paper's request
inside an instruction-tuned model's own chat template."""

from __future__ import annotations

from interp.errors import InvalidArgumentError

__all__ = ["PAPER_TEMPLATE", "COMPLETION_TEMPLATE", "CHAT_REQUEST", "chat_template", "NiahError"]


class NiahError(InvalidArgumentError):
    """A NIAH prompt that cannot be built as asked."""


PAPER_TEMPLATE = "{context} Based on the content of the book, Question: {question}\nAnswer:"
COMPLETION_TEMPLATE = "{context} {question}"
# the user's turn of an instruction-tuned model: the assistant's turn is the answer, so no cue
CHAT_REQUEST = "{context} Based on the content of the book, Question: {question}"
_SLOTS = {"{context}": "\x00CONTEXT\x00", "{question}": "\x00QUESTION\x00"}


def chat_template(tokenizer, request: str = CHAT_REQUEST, *, bos_added: bool = True) -> str:
    """A NIAH template for an instruction-tuned model: `request` as the user's turn of the
    tokenizer's chat template, the assistant's turn opened for the answer. With `bos_added` (the
    prompt builder puts BOS first by id) a BOS the chat template writes is left out of the text.

    >>> from transformers import AutoTokenizer                               # doctest: +SKIP
    >>> chat_template(AutoTokenizer.from_pretrained("HuggingFaceTB/SmolLM2-135M-Instruct"))
    ... # doctest: +SKIP
    '<|im_start|>system\\n...<|im_start|>user\\n{context} Based on ... {question}<|im_end|>...'
    """
    if not getattr(tokenizer, "chat_template", None):
        raise NiahError(
            f"{type(tokenizer).__name__} has no chat template; use PAPER_TEMPLATE or pass "
            "template= yourself"
        )
    content = request
    for slot, mark in _SLOTS.items():
        content = content.replace(slot, mark)
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": content}], tokenize=False, add_generation_prompt=True
    )
    bos = getattr(tokenizer, "bos_token", None)
    if bos_added and bos and text.startswith(bos):
        text = text[len(bos) :]
    text = text.replace("{", "{{").replace("}", "}}")
    for slot, mark in _SLOTS.items():
        text = text.replace(mark, slot)
    return text
