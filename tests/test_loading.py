import struct

import pytest
import torch

import interp
from interp.testing import tiny_hf_model

EXPECTED_STORY = (
    ", there was a little girl named Lily. She loved to play outside in the park. "
    "One day, she saw a big, red ball."
)


def test_stories_gguf_loads_unmodified_and_continues_as_documented(stories_path):
    before = stories_path.read_bytes()
    with pytest.warns(UserWarning, match="outside the vocabulary"):
        model = interp.load(str(stories_path))
    assert stories_path.read_bytes() == before, "the user's file must never be rewritten"
    assert (model.architecture, model.n_layers, model.n_heads, model.n_kv_heads) == (
        "LlamaForCausalLM",
        5,
        8,
        4,
    )
    out = model.generate("Once upon a time", max_new_tokens=40)
    assert out.texts[0].startswith(EXPECTED_STORY)


def test_stories_engines_agree(stories):
    prompt = "Once upon a time, there was a little girl"
    _, a = stories.run_with_cache(prompt, sites=interp.SITES, backend="transformer_lens")
    _, b = stories.run_with_cache(prompt, sites=interp.SITES, backend="nnsight")
    for key in a:
        assert (a[key] - b[key]).abs().max() <= 1e-5, key


def test_local_folder_round_trip(tmp_path):
    hf, tok = tiny_hf_model("qwen2")
    hf.save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    model = interp.load(str(tmp_path / "m"))
    assert model.architecture == "Qwen2ForCausalLM" and model.name == "m"
    ids = model.to_tokens("the cat").input_ids
    assert torch.allclose(model.forward("the cat"), hf(ids).logits, atol=1e-5)


def test_dtype_option(tmp_path):
    hf, tok = tiny_hf_model("llama")
    hf.save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    model = interp.load(str(tmp_path / "m"), dtype="bfloat16")
    assert model.dtype == torch.bfloat16
    assert model.forward("the cat").dtype == torch.bfloat16
    with pytest.raises(ValueError, match="unknown dtype"):
        interp.load(str(tmp_path / "m"), dtype="float8")


def test_missing_path_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no GGUF file"):
        interp.load(str(tmp_path / "nope.gguf"))
    with pytest.raises(FileNotFoundError, match="check the path"):
        interp.load(str(tmp_path / "no" / "such" / "folder"))


def test_folder_without_config(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(interp.ModelNotAvailableError, match="config.json"):
        interp.load(str(tmp_path / "empty"))


def test_hub_id_offline_says_where_to_put_files(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    with pytest.raises(interp.ModelNotAvailableError) as err:
        interp.load("EleutherAI/pythia-160m", revision="step143000")
    message = str(err.value)
    assert "not on this machine" in message and "folder" in message and "step143000" in message


def test_revision_for_a_zoo_name_folder_or_gguf_is_refused(tmp_path):
    from interp.errors import InvalidArgumentError

    (tmp_path / "m").mkdir()
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    for spec, kind in (
        ("world-base", "zoo model"),
        (str(tmp_path / "m"), "local folder"),
        (str(tmp_path / "m.gguf"), "GGUF file"),
    ):
        with pytest.raises(InvalidArgumentError, match=f"hub ids only.*{kind}.*drop revision="):
            interp.load(spec, revision="main")


def test_malformed_gguf(tmp_path, stories_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + struct.pack("<I", 3) + b"\x00" * 20)
    with pytest.raises(interp.GGUFMetadataError):
        interp.load(str(bad))
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(stories_path.read_bytes()[:5000])
    with pytest.raises(interp.GGUFMetadataError):
        interp.load(str(truncated))


def test_unsupported_architecture_lists_supported():
    from transformers import BloomConfig, BloomForCausalLM

    hf = BloomForCausalLM(BloomConfig(vocab_size=50, hidden_size=32, n_layer=1, n_head=4))
    with pytest.raises(interp.UnsupportedArchitectureError, match="LlamaForCausalLM"):
        interp.Model(hf, None)


def test_bad_prompts():
    from interp.testing import tiny_model

    model = tiny_model("llama", n_ctx=16)
    with pytest.raises(interp.PromptError, match="empty"):
        model.to_tokens("", prepend_bos=False)
    with pytest.raises(interp.PromptError, match="context window of 16"):
        model.forward(" ".join(["the"] * 20))
    with pytest.raises(interp.PromptError, match="integer"):
        model.forward(torch.zeros(1, 3))
    with pytest.raises(interp.PromptError, match="outside the vocabulary"):
        model.forward(torch.tensor([[1, 2, 10_000]]))
    with pytest.raises(interp.PromptError):
        model.forward([])
    with pytest.raises(interp.UnknownSiteError, match="valid sites"):
        model.run_with_cache("the cat", sites=("attn_out",))
    with pytest.raises(ValueError, match="unknown backend"):
        model.forward("the cat", backend="jax")


def test_unequal_batch_is_padded_with_masks():
    from interp.testing import tiny_model

    model = tiny_model("gpt2")
    tokens = model.to_tokens(["the cat", "the big red cat"])
    assert tokens.attention_mask.tolist()[0] == [0, 0, 1, 1, 1]
    assert tokens.input_ids[0, -1] == tokens.input_ids[1, -1]


def test_device_and_dtype_of_inputs_follow_the_model():
    from interp.testing import tiny_model

    model = tiny_model("llama")
    ids = model.to_tokens("the cat").input_ids.int()  # int32 ids are accepted and converted
    assert torch.allclose(model.forward(ids), model.forward("the cat"))
    _, src = model.run_with_cache("the cat saw", sites=("z",))
    src64 = {
        key: value.double() for key, value in src.items()
    }  # a float64 cache patches a float32 model
    out = model.forward("the dog saw", interventions=interp.PatchHeads(["L0H0"], source=src64))
    assert out.dtype == torch.float32


def test_a_gguf_chat_template_reaches_the_tokenizer(stories_path, monkeypatch):
    """Instruction-tuned GGUFs carry `tokenizer.chat_template`; the tokenizer keeps it (the
    NIAH prompts of chat models are built with it). stories260K has none and gets none."""
    from interp.loading import gguf

    assert not getattr(gguf.gguf_tokenizer(stories_path), "chat_template", None)
    read = gguf.read_gguf_metadata
    template = "{% for m in messages %}{{ m['content'] }}{% endfor %}"

    def with_template(path, arrays):
        metadata, names = read(path, arrays)
        return {**metadata, "tokenizer.chat_template": template}, names

    monkeypatch.setattr(gguf, "read_gguf_metadata", with_template)
    tokenizer = gguf.gguf_tokenizer(stories_path)
    assert tokenizer.chat_template == template
    assert (
        tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False) == "hi"
    )


def test_cached_folders_of_an_older_format_are_converted_again(tmp_path):
    import json

    from interp.loading import real

    folder = tmp_path / "sha"
    assert real._cache_format(folder) == 0
    folder.mkdir()
    (folder / real.SOURCE_FILE).write_text(json.dumps({"name": "x"}))  # written before formats
    assert real._cache_format(folder) == 1 < real.CACHE_FORMAT
    (folder / real.SOURCE_FILE).write_text(json.dumps({"name": "x", "format": real.CACHE_FORMAT}))
    assert real._cache_format(folder) == real.CACHE_FORMAT
    (folder / real.SOURCE_FILE).write_text("{not json")
    assert real._cache_format(folder) == 0


def _with_tensor_type(stories_path, folder, type_name: str):
    """A copy of stories260K whose blk.0.attn_q.weight is labelled `type_name` (the data
    bytes stay as they are: only the tensor table says otherwise)."""
    import shutil

    from gguf import GGMLQuantizationType, GGUFReader

    path = folder / f"stories_{type_name}.gguf"
    shutil.copy(stories_path, path)
    reader = GGUFReader(str(path), "r+")
    (tensor,) = [t for t in reader.tensors if t.name == "blk.0.attn_q.weight"]
    tensor.field.parts[-2][0] = int(GGMLQuantizationType[type_name])  # the type field
    del reader
    return path


def test_a_gguf_whose_quantization_cannot_be_dequantized_names_the_tensor(tmp_path, stories_path):
    unsupported = _with_tensor_type(stories_path, tmp_path, "Q8_1")
    with pytest.raises(
        interp.GGUFMetadataError,
        match="blk.0.attn_q.weight is stored as Q8_1.*" "re-quantize the file",
    ):
        interp.load(str(unsupported))
    torn = _with_tensor_type(stories_path, tmp_path, "Q8_K")  # 64-value rows, 256-value blocks
    with pytest.raises(interp.GGUFMetadataError, match="damaged or mislabelled"):
        interp.load(str(torn))
    assert stories_path.stat().st_size == unsupported.stat().st_size  # only the label changed
