import pytest

from interp.atlas import RoleMap, atlas_html, write_atlas
from interp.circuit import Circuit

INFO = {"name": "tiny", "architecture": "LlamaForCausalLM", "n_layers": 2, "n_heads": 4}


def _roles():
    return [
        RoleMap(
            "retrieval",
            "retrieval",
            {"L1H2": 0.6},
            {"NIAH drop top-k": 0.7, "NIAH drop random": 0.01},
        ),
        RoleMap("induction", "induction", {"L1H2": 0.9, "L1H0": 0.5}),
        RoleMap("memory <&>", "knowledge_conflict", {(0, 3): -1.5}, note='unsafe "label" <script>'),
    ]


def test_grid_lists_every_role_of_every_head():
    page = atlas_html(INFO, _roles())
    assert page.count('data-head="L') == 8
    cell = page.split('data-head="L1H2"')[1].split("</td>")[0]
    assert "retrieval 0.6" in cell and "induction 0.9" in cell
    assert "NIAH drop top-k" in page


def test_labels_are_escaped():
    page = atlas_html(INFO, _roles())
    assert "memory &lt;&amp;&gt;" in page
    assert "unsafe &quot;label&quot; &lt;script&gt;" in page


def test_out_of_range_head_is_refused():
    with pytest.raises(ValueError, match="outside the 2x4 model"):
        atlas_html(INFO, [RoleMap("x", "y", {"L5H0": 1.0})])


def test_atlas_opens_clean_in_chromium(tmp_path):
    import os
    import shutil

    from test_browser import CANDIDATES, open_page

    binary = os.environ.get("INTERP_CHROMIUM") or next(
        filter(None, map(shutil.which, CANDIDATES)), None
    )
    if not binary:
        pytest.skip("no Chromium binary (apt-get install -y chromium)")
    circuit = Circuit("tiny", "path patching").add_node("L0H1", "mover").add_node("L1H2", "reader")
    circuit = circuit.add_edge("L0H1", "L1H2", "q", 0.4)
    page = write_atlas(
        tmp_path / "atlas.html", INFO, _roles(), [circuit], notes=["measured on tiny"]
    )
    dom, console = open_page(binary, page, tmp_path, "--dump-dom")
    assert console == []
    assert dom.count('class="cell') == 8 and "<svg" in dom
