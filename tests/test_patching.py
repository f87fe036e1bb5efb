"""Patching checked against brute-force references written with plain torch hooks on the HF
module."""

import pytest
import torch

import interp
from interp.patching import Receivers, activation_patch, attribution_patch, logit_diff, path_patch
from interp.testing import tiny_model

BASE = ["the cat saw a red box", "a dog was in the big"]
SOURCE = ["the dog saw a blue box", "a cat was in the small"]


@pytest.fixture(scope="module")
def model():
    return tiny_model("llama", n_layers=3)


@pytest.fixture(scope="module")
def metric(model):
    tok = model.tokenizer
    return logit_diff(
        tok.convert_tokens_to_ids(["box", "box"]), tok.convert_tokens_to_ids(["cat", "dog"])
    )


def _attn(model, layer):
    return model.hf.model.layers[layer].self_attn


def _z_of(model, ids):
    """z of every layer, by a pre-hook on o_proj (independent of interp's engines)."""
    zs, handles = {}, []
    for layer in range(model.n_layers):
        handles.append(
            _attn(model, layer).o_proj.register_forward_pre_hook(
                lambda m, args, layer=layer: zs.__setitem__(layer, args[0].detach().clone())
            )
        )
    try:
        with torch.no_grad():
            model.hf(ids)
    finally:
        for h in handles:
            h.remove()
    return zs


def _run_with_z(model, ids, z_by_layer, metric, q_override=None):
    handles = []
    for layer, z in z_by_layer.items():
        handles.append(
            _attn(model, layer).o_proj.register_forward_pre_hook(lambda m, args, z=z: (z,))
        )
    for layer, fn in (q_override or {}).items():
        handles.append(
            _attn(model, layer).q_proj.register_forward_hook(lambda m, a, out, fn=fn: fn(out))
        )
    try:
        with torch.no_grad():
            return metric(model.hf(ids).logits[:, -1])
    finally:
        for h in handles:
            h.remove()


def _slice(model, head):
    return slice(head * model.d_head, (head + 1) * model.d_head)


def test_activation_patching_matches_reference(model, metric):
    ids_b, ids_s = model.to_tokens(BASE).input_ids, model.to_tokens(SOURCE).input_ids
    zb, zs = _z_of(model, ids_b), _z_of(model, ids_s)
    base_value = _run_with_z(model, ids_b, {}, metric)
    scores = activation_patch(model, BASE, SOURCE, metric, batch_size=7)
    for head in model.all_heads():
        z = zb[head.layer].clone()
        z[:, :, _slice(model, head.head)] = zs[head.layer][:, :, _slice(model, head.head)]
        ref = float((_run_with_z(model, ids_b, {head.layer: z}, metric) - base_value).mean())
        assert abs(scores.scores[head.layer, head.head].item() - ref) <= 1e-5


@pytest.mark.parametrize("backend", interp.BACKENDS)
def test_path_patching_to_logits_matches_reference(model, metric, backend):
    ids_b, ids_s = model.to_tokens(BASE).input_ids, model.to_tokens(SOURCE).input_ids
    zb, zs = _z_of(model, ids_b), _z_of(model, ids_s)
    base_value = _run_with_z(model, ids_b, {}, metric)
    scores = path_patch(model, BASE, SOURCE, metric, batch_size=10, backend=backend)
    for head in model.all_heads():
        frozen = {l: z.clone() for l, z in zb.items()}
        frozen[head.layer][:, :, _slice(model, head.head)] = zs[head.layer][
            :, :, _slice(model, head.head)
        ]
        ref = float((_run_with_z(model, ids_b, frozen, metric) - base_value).mean())
        assert abs(scores.scores[head.layer, head.head].item() - ref) <= 1e-5, head


def test_path_patching_to_receiver_queries_matches_reference(model, metric):
    receiver = interp.Head(2, 5)
    ids_b, ids_s = model.to_tokens(BASE).input_ids, model.to_tokens(SOURCE).input_ids
    zb, zs = _z_of(model, ids_b), _z_of(model, ids_s)
    base_value = _run_with_z(model, ids_b, {}, metric)
    scores = path_patch(
        model, BASE, SOURCE, metric, receivers=Receivers([receiver], "q"), batch_size=16
    )
    assert torch.isnan(scores.scores[2]).all(), "senders in the receiver's layer have no path"
    cols = _slice(model, receiver.head)
    for head in [h for h in model.all_heads() if h.layer < 2]:
        frozen = {l: z.clone() for l, z in zb.items() if l < 2}
        frozen[head.layer][:, :, _slice(model, head.head)] = zs[head.layer][
            :, :, _slice(model, head.head)
        ]
        captured = {}
        hook = _attn(model, 2).q_proj.register_forward_hook(
            lambda m, a, out: captured.setdefault("q", out.clone())
        )
        try:
            _run_with_z(model, ids_b, frozen, metric)
        finally:
            hook.remove()

        def put(out):
            out = out.clone()
            out[:, :, cols] = captured["q"][:, :, cols]
            return out

        ref = float(
            (_run_with_z(model, ids_b, {}, metric, q_override={2: put}) - base_value).mean()
        )
        assert abs(scores.scores[head.layer, head.head].item() - ref) <= 1e-5, head


def test_path_patching_to_receivers_in_two_layers_matches_reference(model, metric):
    """Receivers in layers 1 and 2: a layer-1 sender reaches only the layer-2 receiver."""
    receivers = [interp.Head(1, 3), interp.Head(2, 5)]
    ids_b, ids_s = model.to_tokens(BASE).input_ids, model.to_tokens(SOURCE).input_ids
    zb, zs = _z_of(model, ids_b), _z_of(model, ids_s)
    base_value = _run_with_z(model, ids_b, {}, metric)
    scores = path_patch(
        model, BASE, SOURCE, metric, receivers=Receivers(receivers, "q"), batch_size=16
    )
    assert torch.isnan(scores.scores[2]).all() and not torch.isnan(scores.scores[1]).any()
    for head in [h for h in model.all_heads() if h.layer < 2]:
        frozen = {l: z.clone() for l, z in zb.items() if l < 2}
        frozen[head.layer][:, :, _slice(model, head.head)] = zs[head.layer][
            :, :, _slice(model, head.head)
        ]
        captured, hooks = {}, []
        for r in receivers:
            hooks.append(
                _attn(model, r.layer).q_proj.register_forward_hook(
                    lambda m, a, out, layer=r.layer: captured.setdefault(layer, out.clone())
                )
            )
        try:
            _run_with_z(model, ids_b, frozen, metric)
        finally:
            for h in hooks:
                h.remove()

        def put(layer, cols):
            def fn(out):
                out = out.clone()
                out[:, :, cols] = captured[layer][:, :, cols]
                return out

            return fn

        override = {r.layer: put(r.layer, _slice(model, r.head)) for r in receivers}
        ref = float(
            (_run_with_z(model, ids_b, {}, metric, q_override=override) - base_value).mean()
        )
        assert abs(scores.scores[head.layer, head.head].item() - ref) <= 1e-5, head


def test_batching_does_not_change_results(model, metric):
    a = path_patch(model, BASE, SOURCE, metric, batch_size=2)
    b = path_patch(model, BASE, SOURCE, metric, batch_size=64)
    assert torch.allclose(a.scores, b.scores, atol=1e-5)


def test_attribution_patching_tracks_exact_path_patching(model, metric):
    exact = path_patch(model, BASE, SOURCE, metric).scores.flatten()
    approx = attribution_patch(model, BASE, SOURCE, metric).scores.flatten()
    rank = lambda x: x.argsort().argsort().float()
    rho = torch.corrcoef(torch.stack([rank(exact), rank(approx)]))[0, 1]
    assert rho > 0.7, f"rank correlation {rho:.2f}"


def test_shape_mismatch_is_refused(model, metric):
    with pytest.raises(ValueError, match="same shape"):
        path_patch(model, BASE, ["the cat"], metric)
