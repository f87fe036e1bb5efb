"""A small synthetic "world" language and its corpus / eval-prompt generators.

Everything is word level: every entity (country, capital, person, number,
object, box label) is exactly one token.  The world is a deterministic
function of its seed, so training data, held-out eval prompts and the
per-country training frequencies can always be regenerated.

Document types (all phrased so that the answer token occurs in the context
and the query repeats its key, i.e. they reduce to induction / associative
recall once the model can copy):

* ``fact``      ``the capital of C is K .`` (memorised; Zipf-weighted countries)
* ``conflict``  filler, ``the capital of C is Z .`` (Z another capital), filler,
                ``the capital of C is A .`` where A is Z (context) with a
                frequency-dependent probability and the memorised capital otherwise
* ``needle``    filler with one needle ``the code of P is N .`` and 1-5 distractor
                needles of the same form (other people, other numbers), then the
                question ``the code of P is N .``
* ``box``       ``the apple is in box F , the key is in box Q , ... . box Q contains the key .``
* ``boxq``      the same passage followed by a question about every box (denser supervision)
* ``echo``      (scaffold) ``the apple is in box F apple , ... . box Q contains the key .``
* ``induction`` random tokens with a span of varied length repeated at a varied offset
* ``text``      filler sentences with a repeated span of sentences (natural-ish copying)
* ``crate_echo`` (fine-tuning only) the echo scaffold in the crate / where forms
* ``crate``     (fine-tuning only) other surface forms of entity tracking:
                ``put the apple into crate F ; ... crate F has the apple .``,
                ``box F holds the apple , ... box F contains the apple .``
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

from .documents import TrainingDocuments
from .lexicon import BOS as BOS
from .lexicon import BOX_LABELS as BOX_LABELS
from .lexicon import EOS as EOS
from .lexicon import FUNCTION_WORDS as FUNCTION_WORDS
from .lexicon import OBJECTS as OBJECTS
from .lexicon import PAD as PAD
from .lexicon import SPECIAL_TOKENS as SPECIAL_TOKENS
from .lexicon import UNK as UNK
from .lexicon import word_factory
from .prompts import HeldOutPrompts


@dataclass
class World(TrainingDocuments, HeldOutPrompts):
    """The deterministic synthetic world.  ``World(seed)`` is always the same world.

    This class holds the entities and the vocabulary; the training documents come from
    :class:`~interp.zoo.documents.TrainingDocuments` and the held-out prompts from
    :class:`~interp.zoo.prompts.HeldOutPrompts`."""

    seed: int = 0
    n_countries: int = 80
    n_unseen: int = 8  # countries whose fact never appears in training
    zipf_exponent: float = 1.1
    n_people: int = 150
    n_numbers: int = 200
    n_nouns: int = 160
    n_verbs: int = 60
    n_adjs: int = 50
    # conflict supervision: P(answer = context) = ctx_lo + (ctx_hi - ctx_lo) * rank/(n-1)
    # (frequent countries trust memory, rare ones trust the context)
    ctx_lo: float = 0.25
    ctx_hi: float = 0.75

    def __post_init__(self):
        rng = random.Random(f"world-{self.seed}")
        taken = set(FUNCTION_WORDS) | set(OBJECTS) | set(BOX_LABELS)
        make = word_factory(rng, taken)
        self.countries = [make(2, "ia") for _ in range(self.n_countries)]
        self.capitals = [make(2) for _ in range(self.n_countries)]
        self.people = [make(2).capitalize() for _ in range(self.n_people)]
        self.numbers = [str(100 + i) for i in range(self.n_numbers)]
        self.nouns = [make(1) for _ in range(self.n_nouns)]
        self.verbs = [make(1, "s") for _ in range(self.n_verbs)]
        self.adjs = [make(1, "y") for _ in range(self.n_adjs)]
        self.objects = list(OBJECTS)
        self.box_labels = list(BOX_LABELS)
        # country order is shuffled so frequency rank is not alphabetical / creation order
        order = list(range(self.n_countries))
        rng.shuffle(order)
        self.freq_rank = {self.countries[i]: r for r, i in enumerate(order)}  # 0 = most frequent
        self.capital_of = dict(zip(self.countries, self.capitals))
        seen_by_rank = [self.countries[i] for i in order[: self.n_countries - self.n_unseen]]
        self.seen_countries = seen_by_rank
        self.unseen_countries = [
            self.countries[i] for i in order[self.n_countries - self.n_unseen :]
        ]
        w = np.array([1.0 / (r + 1) ** self.zipf_exponent for r in range(len(seen_by_rank))])
        self.fact_probs = dict(zip(seen_by_rank, (w / w.sum()).tolist()))
        n = len(seen_by_rank)
        self.context_prob = {
            c: self.ctx_lo + (self.ctx_hi - self.ctx_lo) * r / max(n - 1, 1)
            for r, c in enumerate(seen_by_rank)
        }
        self._seen_arr = np.array(seen_by_rank, dtype=object)
        self._seen_p = w / w.sum()

    # ------------------------------------------------------------------ vocab
    @cached_property
    def vocab(self) -> list[str]:
        words = (
            SPECIAL_TOKENS
            + FUNCTION_WORDS
            + self.objects
            + self.box_labels
            + self.countries
            + self.capitals
            + self.people
            + self.numbers
            + self.nouns
            + self.verbs
            + self.adjs
        )
        assert len(words) == len(set(words)), "vocabulary collision"
        return words

    @cached_property
    def token_to_id(self) -> dict[str, int]:
        return {w: i for i, w in enumerate(self.vocab)}

    @cached_property
    def random_token_ids(self) -> np.ndarray:
        """Token ids used for random-token (induction) spans: every content word."""
        skip = set(SPECIAL_TOKENS) | set(FUNCTION_WORDS)
        return np.array([i for w, i in self.token_to_id.items() if w not in skip])

    def encode(self, words: list[str]) -> list[int]:
        t = self.token_to_id
        return [t[w] for w in words]

    def build_tokenizer(self):
        """A ``PreTrainedTokenizerFast`` (word level, whitespace split, BOS prepended)."""
        tok = Tokenizer(models.WordLevel(vocab=self.token_to_id, unk_token=UNK))
        tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        tok.post_processor = processors.TemplateProcessing(
            single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, self.token_to_id[BOS])]
        )
        tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)
        return PreTrainedTokenizerFast(
            tokenizer_object=tok,
            bos_token=BOS,
            eos_token=EOS,
            pad_token=PAD,
            unk_token=UNK,
            model_max_length=4096,
            clean_up_tokenization_spaces=False,
        )

    def to_json(self) -> dict:
        return {
            "seed": self.seed,
            "countries": self.countries,
            "capital_of": self.capital_of,
            "seen_countries": self.seen_countries,
            "unseen_countries": self.unseen_countries,
            "fact_probs": self.fact_probs,
            "freq_rank": self.freq_rank,
            "context_prob": self.context_prob,
            "people": self.people,
            "numbers": self.numbers,
            "objects": self.objects,
            "box_labels": self.box_labels,
        }

    # ------------------------------------------------------------ sentences
    def filler_sentence(self, rng: np.random.Generator) -> list[str]:
        n, v, a = self.nouns, self.verbs, self.adjs
        k = rng.integers(4)
        if k == 0:
            return [
                "the",
                a[rng.integers(len(a))],
                n[rng.integers(len(n))],
                v[rng.integers(len(v))],
                "the",
                n[rng.integers(len(n))],
                ".",
            ]
        if k == 1:
            return [
                "a",
                n[rng.integers(len(n))],
                v[rng.integers(len(v))],
                "near",
                "the",
                n[rng.integers(len(n))],
                ".",
            ]
        if k == 2:
            return [
                "the",
                n[rng.integers(len(n))],
                "and",
                "the",
                n[rng.integers(len(n))],
                v[rng.integers(len(v))],
                ".",
            ]
        return [
            "a",
            a[rng.integers(len(a))],
            n[rng.integers(len(n))],
            v[rng.integers(len(v))],
            "with",
            "a",
            n[rng.integers(len(n))],
            ".",
        ]

    def filler(self, rng: np.random.Generator, n_tokens: int) -> list[str]:
        out: list[str] = []
        while len(out) < n_tokens:
            out += self.filler_sentence(rng)
        return out

    def sample_country(self, rng: np.random.Generator) -> str:
        return self._seen_arr[rng.choice(len(self._seen_arr), p=self._seen_p)]

    @staticmethod
    def fact_sentence(country: str, capital: str) -> list[str]:
        return ["the", "capital", "of", country, "is", capital, "."]

    @staticmethod
    def needle_sentence(person: str, number: str) -> list[str]:
        return ["the", "code", "of", person, "is", number, "."]


def save_world(world: World, path: Path) -> None:
    path.write_text(json.dumps(world.to_json(), indent=1))
