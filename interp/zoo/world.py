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
import math
import random
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

SPECIAL_TOKENS = ["<pad>", "<unk>", "<bos>", "<eos>"]
PAD, UNK, BOS, EOS = SPECIAL_TOKENS

FUNCTION_WORDS = [
    "the", "a", "capital", "of", "is", "code", "in", "box", "contains", "and",
    "near", "with", "put", "into", "crate", "has", "holds", ".", ",", ";", ":",
]

OBJECTS = [
    "apple", "key", "pen", "coin", "ring", "book", "cup", "lamp", "shoe", "hat",
    "sock", "fork", "spoon", "knife", "plate", "bell", "drum", "flute", "stone", "shell",
    "rope", "map", "card", "dice", "glove", "mask", "comb", "brush", "clock", "watch",
    "kite", "ball", "doll", "bead", "nail", "pin", "soap", "leaf", "seed", "egg",
]

BOX_LABELS = [chr(c) for c in range(ord("A"), ord("Z") + 1)]

_ONSETS = ["b", "br", "c", "cr", "d", "dr", "f", "fl", "g", "gr", "h", "k", "l", "m", "n",
           "p", "pr", "r", "s", "st", "t", "tr", "v", "z", "sh", "th", "w", "j"]
_VOWELS = ["a", "e", "i", "o", "u", "ai", "ou", "ea", "io"]
_CODAS = ["", "n", "r", "l", "s", "m", "th", "x", "nd", "rk"]


def _word_factory(rng: random.Random, taken: set[str]):
    def make(n_syll: int, suffix: str = "") -> str:
        while True:
            w = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS)
                        for _ in range(n_syll)) + suffix
            if w not in taken and len(w) > 2:
                taken.add(w)
                return w
    return make


@dataclass
class World:
    """The deterministic synthetic world.  ``World(seed)`` is always the same world."""

    seed: int = 0
    n_countries: int = 80
    n_unseen: int = 8            # countries whose fact never appears in training
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
        make = _word_factory(rng, taken)
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
        self.unseen_countries = [self.countries[i] for i in order[self.n_countries - self.n_unseen:]]
        w = np.array([1.0 / (r + 1) ** self.zipf_exponent for r in range(len(seen_by_rank))])
        self.fact_probs = dict(zip(seen_by_rank, (w / w.sum()).tolist()))
        n = len(seen_by_rank)
        self.context_prob = {c: self.ctx_lo + (self.ctx_hi - self.ctx_lo) * r / max(n - 1, 1)
                             for r, c in enumerate(seen_by_rank)}
        self._seen_arr = np.array(seen_by_rank, dtype=object)
        self._seen_p = w / w.sum()

    # ------------------------------------------------------------------ vocab
    @cached_property
    def vocab(self) -> list[str]:
        words = (SPECIAL_TOKENS + FUNCTION_WORDS + self.objects + self.box_labels + self.countries
                 + self.capitals + self.people + self.numbers + self.nouns + self.verbs + self.adjs)
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
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
        from transformers import PreTrainedTokenizerFast

        tok = Tokenizer(models.WordLevel(vocab=self.token_to_id, unk_token=UNK))
        tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        tok.post_processor = processors.TemplateProcessing(
            single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, self.token_to_id[BOS])])
        tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)
        return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=BOS, eos_token=EOS,
                                       pad_token=PAD, unk_token=UNK, model_max_length=4096,
                                       clean_up_tokenization_spaces=False)

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
            return ["the", a[rng.integers(len(a))], n[rng.integers(len(n))], v[rng.integers(len(v))],
                    "the", n[rng.integers(len(n))], "."]
        if k == 1:
            return ["a", n[rng.integers(len(n))], v[rng.integers(len(v))], "near", "the",
                    n[rng.integers(len(n))], "."]
        if k == 2:
            return ["the", n[rng.integers(len(n))], "and", "the", n[rng.integers(len(n))],
                    v[rng.integers(len(v))], "."]
        return ["a", a[rng.integers(len(a))], n[rng.integers(len(n))], v[rng.integers(len(v))],
                "with", "a", n[rng.integers(len(n))], "."]

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

    # ---------------------------------------------------------- train docs
    # Each returns (list of words, {country: n_mentions}) ; counts feed the
    # per-country training-frequency table.
    def doc_facts(self, rng, n_tokens: int):
        words, counts = [], {}
        while len(words) < n_tokens:
            c = self.sample_country(rng)
            words += self.fact_sentence(c, self.capital_of[c])
            counts[c] = counts.get(c, 0) + 1
        return words, counts

    def _conflict_parts(self, rng, country: str | None = None):
        c = country or self.sample_country(rng)
        mem = self.capital_of[c]
        others = [k for k in self.capitals if k != mem]
        ctx = others[rng.integers(len(others))]
        pre = self.filler(rng, int(rng.integers(0, 22)))
        mid = self.filler(rng, int(rng.integers(0, 22)))
        return c, mem, ctx, pre, mid

    def doc_conflict(self, rng, n_tokens: int = 0):
        c, mem, ctx, pre, mid = self._conflict_parts(rng)
        ans = ctx if rng.random() < self.context_prob[c] else mem
        words = pre + self.fact_sentence(c, ctx) + mid + self.fact_sentence(c, ans)
        return words, {c: 1}

    def _needle_parts(self, rng, n_tokens: int, depth: float | None = None, n_distractors=None):
        n_distractors = int(rng.integers(1, 6)) if n_distractors is None else n_distractors
        k = n_distractors + 1
        people = rng.choice(len(self.people), size=k, replace=False)
        nums = rng.choice(len(self.numbers), size=k, replace=False)
        needles = [self.needle_sentence(self.people[p], self.numbers[q]) for p, q in zip(people, nums)]
        target = 0
        n_fill = max(n_tokens - 7 * k - 5 - 7, 8)  # sentences are <= 7 tokens
        sents: list[list[str]] = []
        while sum(map(len, sents)) < n_fill:
            sents.append(self.filler_sentence(rng))
        # insertion slots (sentence boundaries); the target at the requested depth
        n_slots = len(sents) + 1
        if depth is None:
            t_slot = int(rng.integers(n_slots))
        else:
            t_slot = int(round(depth * (n_slots - 1)))
        slots = [t_slot] + [int(rng.integers(n_slots)) for _ in range(k - 1)]
        # order of insertion within the same slot is random
        inserts: dict[int, list[int]] = {}
        for i, s in enumerate(slots):
            inserts.setdefault(s, []).append(i)
        words: list[str] = []
        span = None
        for s in range(n_slots):
            ids = inserts.get(s, [])
            if depth is not None and s == t_slot:   # eval: target exactly at its depth
                ids = sorted(ids, key=lambda i: (i != 0) if depth < 0.5 else (i == 0))
            else:
                ids = [ids[j] for j in rng.permutation(len(ids))]
            for i in ids:
                if i == target:
                    span = (len(words), len(words) + 7)
                words += needles[i]
            if s < len(sents):
                words += sents[s]
        person, number = self.people[people[0]], self.numbers[nums[0]]
        question = ["the", "code", "of", person, "is"]
        return words, question, number, span, [self.numbers[q] for q in nums[1:]]

    def doc_needle(self, rng, n_tokens: int):
        words, question, number, _, _ = self._needle_parts(rng, n_tokens - 1)
        return words + question + [number, "."], {}

    def _box_parts(self, rng, n_boxes: int, form: str = "box"):
        objs = rng.choice(len(self.objects), size=n_boxes, replace=False)
        labs = rng.choice(len(self.box_labels), size=n_boxes, replace=False)
        o = [self.objects[i] for i in objs]
        b = [self.box_labels[i] for i in labs]
        q = int(rng.integers(n_boxes))
        words: list[str] = []
        if form == "box":
            for i in range(n_boxes):
                words += ["the", o[i], "is", "in", "box", b[i], "," if i < n_boxes - 1 else "."]
            question = ["box", b[q], "contains", "the"]
        elif form == "crate":
            for i in range(n_boxes):
                words += ["put", "the", o[i], "into", "crate", b[i], ";" if i < n_boxes - 1 else "."]
            question = ["crate", b[q], "has", "the"]
        elif form == "holds":
            for i in range(n_boxes):
                words += ["box", b[i], "holds", "the", o[i], "," if i < n_boxes - 1 else "."]
            question = ["box", b[q], "contains", "the"]
        elif form == "where":
            for i in range(n_boxes):
                words += ["the", o[i], "is", "in", "crate", b[i], "," if i < n_boxes - 1 else "."]
            question = ["crate", b[q], "has", "the"]
        else:
            raise ValueError(form)
        return words, question, o[q], b[q]

    def doc_box(self, rng, n_tokens: int = 0, form: str = "box"):
        n = int(rng.integers(2, 7))
        words, question, ans, _ = self._box_parts(rng, n, form)
        return words + question + [ans, "."], {}

    # where each object-first form puts the object and the label in its 7-word clause
    _OBJECT_FIRST = {"box": (1, 5), "crate": (2, 5), "where": (1, 5)}

    def doc_boxq(self, rng, n_tokens: int = 0):
        """A box passage followed by a question about every box, in random order (denser
        supervision for the same format: ``... . box Q contains the key . box F contains the apple .``)."""
        n = int(rng.integers(2, 7))
        words, _, _, _ = self._box_parts(rng, n, "box")
        obj, lab = self._OBJECT_FIRST["box"]
        objs, labs = words[obj::7], words[lab::7]
        for i in rng.permutation(n):
            words += ["box", labs[i], "contains", "the", objs[i], "."]
        return words, {}

    def doc_echo(self, rng, n_tokens: int = 0, form: str = "box"):
        """A box passage where every label is followed by its object, then a question:
        ``the apple is in box F apple , the key is in box Q key . box Q contains the key .``

        A scaffold for the lookback that entity tracking needs: predicting the echoed object
        right after a label teaches a head at the label position to fetch the object of its
        own sentence, which the question later reads back through the label."""
        n = int(rng.integers(2, 7))
        words, question, ans, _ = self._box_parts(rng, n, form)
        obj, lab = self._OBJECT_FIRST[form]
        out: list[str] = []
        for i in range(n):
            clause = words[7 * i:7 * i + 7]
            out += clause[:lab + 1] + [clause[obj]] + clause[lab + 1:]
        return out + question + [ans, "."], {}

    def doc_crate_echo(self, rng, n_tokens: int = 0):
        """The echo scaffold in the fine-tuning surface forms (crate / where), never the box form."""
        return self.doc_echo(rng, n_tokens, ("crate", "where")[int(rng.integers(2))])

    def doc_crate(self, rng, n_tokens: int = 0):
        form = ("crate", "holds", "where")[int(rng.integers(3))]
        return self.doc_box(rng, n_tokens, form)

    @staticmethod
    def induction_layout(rng, n_tokens: int) -> tuple[int, int, int]:
        """(span length, prefix length, gap) of a random-span induction document."""
        L = int(rng.integers(6, max(7, min(80, n_tokens // 2 - 2))))
        pre = int(rng.integers(0, max(1, n_tokens - 2 * L + 1)))
        gap = int(rng.integers(0, max(1, n_tokens - 2 * L - pre + 1)))
        return L, pre, gap

    def doc_induction(self, rng, n_tokens: int):
        """Random content tokens; a span of length 6..min(80, n/2) repeated at a random offset."""
        ids = self.random_token_ids
        L, pre, gap = self.induction_layout(rng, n_tokens)
        span = rng.choice(ids, size=L)
        toks = np.concatenate([rng.choice(ids, size=pre), span, rng.choice(ids, size=gap), span,
                               rng.choice(ids, size=max(0, n_tokens - 2 * L - pre - gap))])
        return [self.vocab[i] for i in toks], {}

    def doc_repeat(self, rng, n_tokens: int):
        """Random content tokens, then a random span (length 3..40) repeated until the row is full.

        Span length and offset vary per document, so only content matching (induction),
        not a fixed positional offset, predicts the repeats."""
        ids = self.random_token_ids
        L = int(rng.integers(3, 41))
        pre = int(rng.integers(0, 24))
        span = rng.choice(ids, size=L)
        reps = max(2, -(-(n_tokens - pre) // L))
        toks = np.concatenate([rng.choice(ids, size=pre)] + [span] * reps)[: max(n_tokens, pre + 2 * L)]
        return [self.vocab[i] for i in toks], {}

    def doc_text(self, rng, n_tokens: int):
        """Filler text with a span of sentences repeated later (natural-ish copying)."""
        n_span = int(rng.integers(2, 6))
        span = sum((self.filler_sentence(rng) for _ in range(n_span)), [])
        pre = self.filler(rng, int(rng.integers(0, max(1, n_tokens - 2 * len(span)))))
        gap = self.filler(rng, int(rng.integers(0, max(1, n_tokens - 2 * len(span) - len(pre)))))
        words = pre + span + gap + span
        words += self.filler(rng, n_tokens - len(words))
        return words, {}

    # ------------------------------------------------------------- batches
    DOC_TYPES = ("facts", "conflict", "needle", "box", "boxq", "echo", "crate", "crate_echo", "induction", "repeat", "text")

    def make_row(self, rng, kind: str, seq_len: int):
        """One training row of exactly ``seq_len`` token ids (BOS-led docs packed with EOS)."""
        gen = getattr(self, f"doc_{kind}")
        ids: list[int] = []
        counts: dict[str, int] = {}
        while len(ids) < seq_len:
            room = seq_len - len(ids) - 2
            if kind in ("facts", "needle", "induction", "repeat", "text"):
                n = room if kind != "needle" else int(rng.integers(max(room // 3, 24), room + 1)) if room > 24 else room
                n = max(n, 8)
            else:
                n = room
            words, c = gen(rng, n)
            for k, v in c.items():
                counts[k] = counts.get(k, 0) + v
            ids += [self.token_to_id[BOS]] + self.encode(words) + [self.token_to_id[EOS]]
        return ids[:seq_len], counts

    def make_batch(self, rng, mixture: dict[str, float], batch_size: int, seq_len: int):
        kinds = list(mixture)
        p = np.array([mixture[k] for k in kinds], dtype=float)
        p /= p.sum()
        rows, counts = [], {}
        for _ in range(batch_size):
            kind = kinds[rng.choice(len(kinds), p=p)]
            row, c = self.make_row(rng, kind, seq_len)
            rows.append(row)
            for k, v in c.items():
                counts[k] = counts.get(k, 0) + v
        return np.array(rows, dtype=np.int64), counts

    def short_copy_batch(self, rng, n_rows: int, length: int, max_span: int = 8) -> np.ndarray:
        """Short rows ``<bos> prefix(0-3) r r r ...`` with span length 2..max_span (curriculum
        that bootstraps induction heads: short contexts give a much stronger copy signal)."""
        ids = self.random_token_ids
        out = np.empty((n_rows, length), dtype=np.int64)
        for i in range(n_rows):
            L = int(rng.integers(2, max_span + 1))
            pre = rng.choice(ids, size=int(rng.integers(0, 4)))
            span = rng.choice(ids, size=L)
            reps = -(-length // L) + 1
            row = np.concatenate([[self.token_to_id[BOS]], pre] + [span] * reps)
            out[i] = row[:length]
        return out

    # -------------------------------------------------------- eval prompts
    # Held-out prompts use a separate RNG stream (seed offset 10**6 + ...), so
    # the random draws differ from training rows.

    def _eval_rng(self, seed: int, tag: str) -> np.random.Generator:
        return np.random.default_rng([self.seed, 10**6 + seed, sum(map(ord, tag))])

    def fact_prompts(self, countries: list[str] | None = None) -> list[dict]:
        """``<bos> the capital of C is`` -> capital.  Default: every seen country."""
        out = []
        for c in countries or self.seen_countries:
            out.append({"prompt": " ".join(["the", "capital", "of", c, "is"]),
                        "answer": self.capital_of[c], "country": c,
                        "freq_rank": self.freq_rank[c], "train_prob": self.fact_probs.get(c, 0.0),
                        "seen": c in self.fact_probs})
        return out

    def conflict_prompts(self, n: int = 200, seed: int = 0) -> list[dict]:
        """Context states another capital; ``memory_answer`` vs ``context_answer``."""
        rng = self._eval_rng(seed, "conflict")
        out = []
        for i in range(n):
            c = self.seen_countries[(i * len(self.seen_countries)) // n if n <= len(self.seen_countries) else i % len(self.seen_countries)]
            c, mem, ctx, pre, mid = self._conflict_parts(rng, c)
            words = pre + self.fact_sentence(c, ctx) + mid + ["the", "capital", "of", c, "is"]
            out.append({"prompt": " ".join(words), "memory_answer": mem, "context_answer": ctx,
                        "country": c, "freq_rank": self.freq_rank[c],
                        "train_context_prob": self.context_prob[c]})
        return out

    def needle_prompts(self, n_per_depth: int = 40, context_len: int = 256,
                       depths=(0.0, 0.25, 0.5, 0.75, 1.0), seed: int = 0,
                       n_distractors: int | None = None) -> list[dict]:
        """Needle ``the code of P is N .`` hidden in filler with same-form distractors.

        ``needle_span`` is the [start, end) token range of the needle sentence, counted in
        tokens of the tokenized prompt (position 0 is BOS)."""
        rng = self._eval_rng(seed, f"needle{context_len}")
        out = []
        for d in depths:
            for _ in range(n_per_depth):
                nd = n_distractors if n_distractors is not None else int(rng.integers(1, 6))
                words, question, number, span, distract = self._needle_parts(
                    rng, context_len - 1, depth=d, n_distractors=nd)
                words = words + question
                out.append({"prompt": " ".join(words), "answer": number, "depth": d,
                            "needle_span": [span[0] + 1, span[1] + 1], "distractor_answers": distract,
                            "n_tokens": len(words) + 1})
        return out

    def box_prompts(self, n_per_size: int = 100, sizes=(3, 4, 5), seed: int = 0, form="box") -> list[dict]:
        """``the apple is in box F , ... . box Q contains the`` -> object."""
        rng = self._eval_rng(seed, f"box-{form}")
        out = []
        for k in sizes:
            for _ in range(n_per_size):
                words, question, ans, lab = self._box_parts(rng, k, form)
                out.append({"prompt": " ".join(words + question), "answer": ans, "box": lab,
                            "n_boxes": k})
        return out

    def repeated_span_sequences(self, lengths=(10, 20, 40), offsets=(0, 30, 80), n: int = 16,
                                seed: int = 0) -> list[dict]:
        """``<bos> + prefix(offset) + r + r`` with r random content tokens.

        Returns token-id lists (``input_ids`` include BOS) with ``first`` / ``second``
        [start, end) positions of the two copies."""
        rng = self._eval_rng(seed, "induction")
        ids = self.random_token_ids
        out = []
        for L in lengths:
            for o in offsets:
                for _ in range(n):
                    pre = rng.choice(ids, size=o)
                    r = rng.choice(ids, size=L)
                    seq = [self.token_to_id[BOS]] + pre.tolist() + r.tolist() + r.tolist()
                    out.append({"input_ids": seq, "span_len": L, "offset": o,
                                "first": [1 + o, 1 + o + L], "second": [1 + o + L, 1 + o + 2 * L]})
        return out


def save_world(world: World, path: Path) -> None:
    path.write_text(json.dumps(world.to_json(), indent=1))
