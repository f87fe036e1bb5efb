import os
import warnings
from pathlib import Path

import pytest
import torch

warnings.filterwarnings("ignore", category=FutureWarning)
torch.set_num_threads(min(2, torch.get_num_threads()))

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
STORIES = Path(os.environ.get("INTERP_STORIES_GGUF", SHARED / "models" / "stories260K.gguf"))


@pytest.fixture(scope="session")
def stories_path():
    if not STORIES.exists():
        pytest.skip(f"{STORIES} not present (it lives in ../shared beside the checkout)")
    return STORIES


@pytest.fixture(scope="session")
def stories(stories_path):
    import interp

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return interp.load(str(stories_path))
