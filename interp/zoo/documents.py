"""Training documents of the world language and the rows and batches packed from them.

Each ``doc_<kind>`` method returns ``(words, {country: n_mentions})``; the counts feed the
per-country training-frequency table on the card.  ``make_row`` packs BOS-led documents of one
kind into a row of exactly ``seq_len`` token ids, and ``make_batch`` draws each row's kind from a
mixture.  Every draw comes from the ``numpy`` generator passed in, so a batch is a pure function
of that generator's seed.

The methods form :class:`TrainingDocuments`, a mixin of :class:`interp.zoo.world.World`: they
read the world's vocabulary and entities (``self.capitals``, ``self.filler``, ...).
"""

from __future__ import annotations

import numpy as np

from .lexicon import BOS, EOS


class TrainingDocuments:
    """The training-document generators of :class:`~interp.zoo.world.World` (a mixin)."""

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
        needles = [
            self.needle_sentence(self.people[p], self.numbers[q]) for p, q in zip(people, nums)
        ]
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
            if depth is not None and s == t_slot:  # eval: target exactly at its depth
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
                words += [
                    "put",
                    "the",
                    o[i],
                    "into",
                    "crate",
                    b[i],
                    ";" if i < n_boxes - 1 else ".",
                ]
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
        supervision for the same format:
        ``... . box Q contains the key . box F contains the apple .``)."""
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
            clause = words[7 * i : 7 * i + 7]
            out += clause[: lab + 1] + [clause[obj]] + clause[lab + 1 :]
        return out + question + [ans, "."], {}

    def doc_crate_echo(self, rng, n_tokens: int = 0):
        """The echo scaffold in the fine-tuning surface forms (crate / where), never the box
        form."""
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
        toks = np.concatenate(
            [
                rng.choice(ids, size=pre),
                span,
                rng.choice(ids, size=gap),
                span,
                rng.choice(ids, size=max(0, n_tokens - 2 * L - pre - gap)),
            ]
        )
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
        toks = np.concatenate([rng.choice(ids, size=pre)] + [span] * reps)[
            : max(n_tokens, pre + 2 * L)
        ]
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
    DOC_TYPES = (
        "facts",
        "conflict",
        "needle",
        "box",
        "boxq",
        "echo",
        "crate",
        "crate_echo",
        "induction",
        "repeat",
        "text",
    )

    def make_row(self, rng, kind: str, seq_len: int):
        """One training row of exactly ``seq_len`` token ids (BOS-led docs packed with EOS)."""
        gen = getattr(self, f"doc_{kind}")
        ids: list[int] = []
        counts: dict[str, int] = {}
        while len(ids) < seq_len:
            room = seq_len - len(ids) - 2
            if kind in ("facts", "needle", "induction", "repeat", "text"):
                n = (
                    room
                    if kind != "needle"
                    else int(rng.integers(max(room // 3, 24), room + 1))
                    if room > 24
                    else room
                )
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
