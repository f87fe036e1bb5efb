"""The bad-input replay: every family of bad input and fault that issue 20 lists (and more),
each run for real and classified as a typed error, a warning, a correct result, a silent wrong
result or a confusing error, with the models checked for leftovers after each.

    python scripts/replay_bad_inputs.py            # the table of counts, and results/reliability/
    pytest tests/test_bad_inputs.py                # each case as a test: none silent or confusing
"""

from .api_cases import API_CASES
from .cli_cases import CLI_CASES
from .context import Context
from .file_cases import FILE_CASES
from .kv_cases import KV_CASES
from .replay import ACCEPTED, OUTCOMES, Case, Outcome, replay
from .saved_cases import SAVED_CASES

ALL_CASES = API_CASES + KV_CASES + FILE_CASES + SAVED_CASES + CLI_CASES

__all__ = [
    "ALL_CASES",
    "API_CASES",
    "FILE_CASES",
    "KV_CASES",
    "SAVED_CASES",
    "CLI_CASES",
    "Context",
    "Case",
    "Outcome",
    "replay",
    "OUTCOMES",
    "ACCEPTED",
]
