"""Results with provenance: what an analyzer hands back.

Every head-scoring method in `interp` (retrieval heads, induction heads, memory/context
heads, ...) ends with one number per attention head. `HeadScores` keeps that
``[n_layers, n_heads]`` grid together with *where it came from*: the model, the method,
a hash of the data, the seed, the toolkit version, the method's default threshold, a
free-form ``meta`` dict and a timestamp. A bare tensor forgets all of that the moment it
leaves the notebook cell; a `HeadScores` can be saved, reloaded and compared months
later.

Heads are named ``L{layer}H{head}``, zero-based, so ``L1H2`` is ``scores[1, 2]``::

    >>> import torch
    >>> hs = HeadScores(torch.tensor([[0.0, 0.25, 0.75], [0.5, -0.125, 0.0625]]),
    ...                 model="toy", method="retrieval", threshold=0.1)
    >>> hs.top(2)
    [(0, 2, 0.75), (1, 0, 0.5)]
    >>> hs.heads()            # heads scoring above the method's threshold (0.1)
    [(0, 1), (0, 2), (1, 0)]
    >>> hs.share_above(0.4)
    0.3333333333333333
    >>> HeadScores.from_json(hs.to_json()) == hs
    True

Heads that were not scored (a method that skips layer 0, a sweep that was cut short)
are marked with ``mask`` (``True`` = scored). Their entries in ``scores`` are stored as
NaN, and NaN means exactly that and nothing else: a scored head can never hold NaN.
`top`, `heads` and `share_above` look only at scored heads.

`data_hash` turns the inputs of a run (prompts, token ids, a config dict) into a short,
stable fingerprint to store as provenance.
"""

from .hashing import data_hash as data_hash
from .scores import HeadScores as HeadScores

__all__ = ["HeadScores", "data_hash"]
