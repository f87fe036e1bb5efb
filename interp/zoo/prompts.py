"""Held-out evaluation prompts of the world language, with their answers.

Held-out prompts use their own RNG stream (seed offset ``10**6``, plus a tag per prompt kind),
so their random draws differ from every training row.  The methods form
:class:`HeldOutPrompts`, a mixin of :class:`interp.zoo.world.World`.
"""

from __future__ import annotations

import numpy as np

from .lexicon import BOS


class HeldOutPrompts:
    """The held-out prompt builders of :class:`~interp.zoo.world.World` (a mixin)."""

    def _eval_rng(self, seed: int, tag: str) -> np.random.Generator:
        return np.random.default_rng([self.seed, 10**6 + seed, sum(map(ord, tag))])

    def fact_prompts(self, countries: list[str] | None = None) -> list[dict]:
        """``<bos> the capital of C is`` -> capital.  Default: every seen country."""
        out = []
        for c in countries or self.seen_countries:
            out.append(
                {
                    "prompt": " ".join(["the", "capital", "of", c, "is"]),
                    "answer": self.capital_of[c],
                    "country": c,
                    "freq_rank": self.freq_rank[c],
                    "train_prob": self.fact_probs.get(c, 0.0),
                    "seen": c in self.fact_probs,
                }
            )
        return out

    def conflict_prompts(self, n: int = 200, seed: int = 0) -> list[dict]:
        """Context states another capital; ``memory_answer`` vs ``context_answer``."""
        rng = self._eval_rng(seed, "conflict")
        out = []
        for i in range(n):
            c = self.seen_countries[
                (i * len(self.seen_countries)) // n
                if n <= len(self.seen_countries)
                else i % len(self.seen_countries)
            ]
            c, mem, ctx, pre, mid = self._conflict_parts(rng, c)
            words = pre + self.fact_sentence(c, ctx) + mid + ["the", "capital", "of", c, "is"]
            out.append(
                {
                    "prompt": " ".join(words),
                    "memory_answer": mem,
                    "context_answer": ctx,
                    "country": c,
                    "freq_rank": self.freq_rank[c],
                    "train_context_prob": self.context_prob[c],
                }
            )
        return out

    def needle_prompts(
        self,
        n_per_depth: int = 40,
        context_len: int = 256,
        depths=(0.0, 0.25, 0.5, 0.75, 1.0),
        seed: int = 0,
        n_distractors: int | None = None,
    ) -> list[dict]:
        """Needle ``the code of P is N .`` hidden in filler with same-form distractors.

        ``needle_span`` is the [start, end) token range of the needle sentence, counted in
        tokens of the tokenized prompt (position 0 is BOS)."""
        rng = self._eval_rng(seed, f"needle{context_len}")
        out = []
        for d in depths:
            for _ in range(n_per_depth):
                nd = n_distractors if n_distractors is not None else int(rng.integers(1, 6))
                words, question, number, span, distract = self._needle_parts(
                    rng, context_len - 1, depth=d, n_distractors=nd
                )
                words = words + question
                out.append(
                    {
                        "prompt": " ".join(words),
                        "answer": number,
                        "depth": d,
                        "needle_span": [span[0] + 1, span[1] + 1],
                        "distractor_answers": distract,
                        "n_tokens": len(words) + 1,
                    }
                )
        return out

    def box_prompts(
        self, n_per_size: int = 100, sizes=(3, 4, 5), seed: int = 0, form="box"
    ) -> list[dict]:
        """``the apple is in box F , ... . box Q contains the`` -> object."""
        rng = self._eval_rng(seed, f"box-{form}")
        out = []
        for k in sizes:
            for _ in range(n_per_size):
                words, question, ans, lab = self._box_parts(rng, k, form)
                out.append(
                    {"prompt": " ".join(words + question), "answer": ans, "box": lab, "n_boxes": k}
                )
        return out

    def repeated_span_sequences(
        self, lengths=(10, 20, 40), offsets=(0, 30, 80), n: int = 16, seed: int = 0
    ) -> list[dict]:
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
                    out.append(
                        {
                            "input_ids": seq,
                            "span_len": L,
                            "offset": o,
                            "first": [1 + o, 1 + o + L],
                            "second": [1 + o + L, 1 + o + 2 * L],
                        }
                    )
        return out
