"""What the cases run against: a tiny random Llama, the zoo's world-base, a scratch folder and
the CLI, with the checks that nothing was left behind."""

from __future__ import annotations

import hashlib
import tempfile
import warnings
from functools import cached_property
from pathlib import Path
from unittest.mock import patch

import torch
from typer.testing import CliRunner

import interp
from interp.testing import tiny_model

from .replay import CliRefused, forward_fingerprint

__all__ = ["Context", "SHORT", "LONG", "WORLD_PROMPT"]

SHORT = "once upon a time"
LONG = "once upon a time there was a little girl named"
WORLD_PROMPT = "Q : the capital of Avaria ? A :"


def _hooks_clean(model) -> bool:
    tl_clean = all(len(hp._forward_hooks) == 0 for hp in model.bridge.hook_dict.values())
    hf_clean = all(not m._forward_hooks and not m._forward_pre_hooks for m in model.hf.modules())
    return tl_clean and hf_clean


def _tree_hash(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


class Context:
    """Models and files shared by every case; `clean()` after each one."""

    def __init__(self, scratch: Path | None = None):
        self._tmp = None if scratch else tempfile.TemporaryDirectory(prefix="bad-inputs-")
        self.scratch = Path(scratch or self._tmp.name)  # type: ignore[union-attr]
        self._models: dict[str, tuple[interp.Model, torch.Tensor, str]] = {}
        self.zoo_hash_before = _tree_hash(self.zoo_folder)

    # --- models -------------------------------------------------------------------------------

    def _remember(self, key: str, model: interp.Model, prompt: str) -> interp.Model:
        self._models[key] = (model, forward_fingerprint(model, prompt), prompt)
        return model

    @cached_property
    def tiny(self) -> interp.Model:
        """A 2-layer random Llama (8 query heads, 4 kv heads) with a word tokenizer."""
        return self._remember("tiny", tiny_model("llama"), SHORT)

    @cached_property
    def world(self) -> interp.Model:
        """The zoo's world-base (4 layers x 8 heads)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = interp.load("world-base")
        return self._remember("world", model, WORLD_PROMPT)

    @property
    def zoo_folder(self) -> Path:
        import interp.zoo

        return Path(interp.zoo.__file__).parent

    def folder(self, name: str) -> Path:
        """A fresh, empty scratch folder."""
        path = self.scratch / name
        path.mkdir(parents=True, exist_ok=False)
        return path

    # --- the CLI ------------------------------------------------------------------------------

    def cli(self, *args: str):
        """Run ``interp ARGS`` in this process. A refusal (exit 2, ``error: ...``) raises
        `CliRefused`; a crash re-raises its exception; a success returns the typer result."""
        from interp.cli import app

        real_load = interp.load

        def load(spec, **kw):  # world-base once: the cases differ in flags, not in the model
            if spec == "world-base" and kw.get("backend", "nnsight") == "nnsight" and len(kw) <= 1:
                return self.world
            return real_load(spec, **kw)

        with patch.object(interp, "load", load):
            result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=True)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        output = result.output
        if result.exit_code == 2 and "error" in output.lower() and "Traceback" not in output:
            raise CliRefused(" ".join(output.split()))
        if result.exit_code != 0:
            raise RuntimeError(f"exit {result.exit_code}: {output[-400:]}")
        return result

    # --- what must stay as it was -------------------------------------------------------------

    def clean(self) -> bool:
        """No hook and no active intervention on any loaded model, and a plain forward equal bit
        for bit to the one before the first case. Active interventions are removed (so the next
        case starts clean) but still count as a leak."""
        ok = True
        for model, fingerprint, prompt in self._models.values():
            if model.active_interventions:
                ok = False
                model.remove()
            if not _hooks_clean(model):
                ok = False
            if not torch.equal(forward_fingerprint(model, prompt), fingerprint):
                ok = False
        return ok

    def zoo_untouched(self) -> bool:
        return _tree_hash(self.zoo_folder) == self.zoo_hash_before
