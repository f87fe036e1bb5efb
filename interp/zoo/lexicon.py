"""The fixed lexicon of the world language: special tokens, function words, objects, box labels,
and the syllable generator that coins every other word (countries, capitals, people, ...).

    >>> SPECIAL_TOKENS[:3]
    ['<pad>', '<unk>', '<bos>']
    >>> import random
    >>> make = word_factory(random.Random(0), set())
    >>> make(2, "ia").endswith("ia")
    True
"""

from __future__ import annotations

import random

SPECIAL_TOKENS = ["<pad>", "<unk>", "<bos>", "<eos>"]
PAD, UNK, BOS, EOS = SPECIAL_TOKENS

FUNCTION_WORDS = [
    "the",
    "a",
    "capital",
    "of",
    "is",
    "code",
    "in",
    "box",
    "contains",
    "and",
    "near",
    "with",
    "put",
    "into",
    "crate",
    "has",
    "holds",
    ".",
    ",",
    ";",
    ":",
]

OBJECTS = [
    "apple",
    "key",
    "pen",
    "coin",
    "ring",
    "book",
    "cup",
    "lamp",
    "shoe",
    "hat",
    "sock",
    "fork",
    "spoon",
    "knife",
    "plate",
    "bell",
    "drum",
    "flute",
    "stone",
    "shell",
    "rope",
    "map",
    "card",
    "dice",
    "glove",
    "mask",
    "comb",
    "brush",
    "clock",
    "watch",
    "kite",
    "ball",
    "doll",
    "bead",
    "nail",
    "pin",
    "soap",
    "leaf",
    "seed",
    "egg",
]

BOX_LABELS = [chr(c) for c in range(ord("A"), ord("Z") + 1)]

ONSETS = [
    "b",
    "br",
    "c",
    "cr",
    "d",
    "dr",
    "f",
    "fl",
    "g",
    "gr",
    "h",
    "k",
    "l",
    "m",
    "n",
    "p",
    "pr",
    "r",
    "s",
    "st",
    "t",
    "tr",
    "v",
    "z",
    "sh",
    "th",
    "w",
    "j",
]
VOWELS = ["a", "e", "i", "o", "u", "ai", "ou", "ea", "io"]
CODAS = ["", "n", "r", "l", "s", "m", "th", "x", "nd", "rk"]


def word_factory(rng: random.Random, taken: set[str]):
    """A coiner of fresh words: ``make(n_syllables, suffix)`` returns a word not in ``taken``
    (longer than two letters) and adds it there, so no two coined words collide."""

    def make(n_syll: int, suffix: str = "") -> str:
        while True:
            w = (
                "".join(
                    rng.choice(ONSETS) + rng.choice(VOWELS) + rng.choice(CODAS)
                    for _ in range(n_syll)
                )
                + suffix
            )
            if w not in taken and len(w) > 2:
                taken.add(w)
                return w

    return make
