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


# --- causal checks as sentences -------------------------------------------------------------------


def test_checks_are_sentences_with_a_pass_or_fail_mark():
    from interp.checks import Check

    met = Check(
        "pruning L1H2 raises memory use 59% -> 98% (+39)",
        "5 random heads move it 3",
        (("rise >= 20", True), ("control <= 5", True)),
    )
    missed = Check(
        "masking L0H1 drops NIAH accuracy 100% -> 60% (-40)",
        "5 random heads drop it 7.0 points on average",
        (("control <= 5", False),),
    )
    role = RoleMap(
        "memory",
        "knowledge_conflict",
        {"L1H2": 1.0},
        {"rise_points": 39.4},
        checks=[met, missed, Check("no bar here")],
    )
    page = atlas_html(INFO, [role])
    assert "<li class='pass'><span class='mark' title='met'>\u2713</span> pruning L1H2" in page
    assert "<li class='fail'><span class='mark' title='not met'>\u2717</span> masking L0H1" in page
    assert "(control &lt;= 5: not met)" in page and "title='no bar stated'" in page
    assert "<details><summary>numbers</summary>" in page  # the raw numbers, one click away
    assert met.passed is True and missed.passed is False and Check("x").passed is None


def test_rate_check_states_the_direction_and_the_control():
    from interp.checks import rate_check

    down = rate_check(
        "pruning L2H0",
        "context use",
        0.5,
        0.25,
        random_move=1.0,
        n_draws=4,
        k=2,
        outside_move=0.5,
        bars=(("rise >= 20", False),),
    )
    assert down.effect == "pruning L2H0 lowers context use 50% -> 25% (-25)"
    assert down.control.startswith("4 random 2-head sets move the rates by up to 1.0 points")
    assert "(0.5 when drawn outside the located heads)" in down.control
    assert down.passed is False


# --- the grid fits any head count ----------------------------------------------------------------

_MEASURE = """<script>
window.addEventListener('load', function () {
  var wrap = document.querySelector('.gridwrap'), heads = document.querySelectorAll('th.col');
  var last = heads[heads.length - 1], first = document.querySelector('th.row');
  var before = wrap.getBoundingClientRect(), fits = wrap.scrollWidth <= wrap.clientWidth + 1;
  wrap.scrollLeft = wrap.scrollWidth; wrap.scrollTop = wrap.scrollHeight;
  var box = wrap.getBoundingClientRect(), h = last.getBoundingClientRect();
  var row = first.getBoundingClientRect(), col = heads[0].getBoundingClientRect();
  var chip = document.querySelector('.chip');
  document.body.setAttribute('data-layout', JSON.stringify({
    inside_viewport: before.right <= window.innerWidth + 1,
    fits_without_scrolling: fits,
    page_wider_than_viewport: document.documentElement.scrollWidth > window.innerWidth + 1,
    last_head_reachable: h.right <= box.right + 1 && h.left >= box.left - 1,
    layer_labels_stick: Math.abs(row.left - box.left) <= 2,
    head_labels_stick: Math.abs(col.top - box.top) <= 2,
    cell_width: document.querySelector('td.cell').getBoundingClientRect().width,
    chip_font_px: parseFloat(getComputedStyle(chip).fontSize)
  }));
});
</script>"""


@pytest.mark.parametrize("shape", [(4, 8), (30, 9), (32, 32)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_grid_fits_any_head_count_at_two_widths_in_chromium(tmp_path, shape):
    import json
    import os
    import re
    import shutil

    from test_browser import CANDIDATES, open_page

    binary = os.environ.get("INTERP_CHROMIUM") or next(
        filter(None, map(shutil.which, CANDIDATES)), None
    )
    if not binary:
        pytest.skip("no Chromium binary (apt-get install -y chromium)")
    n_layers, n_heads = shape
    info = {"name": "shape", "n_layers": n_layers, "n_heads": n_heads}
    last = f"L{n_layers - 1}H{n_heads - 1}"  # the bottom-right head, the first one clipped before
    role = RoleMap("retrieval", "retrieval", {last: 0.5, "L0H0": 0.9})
    for width in (640, 1400):
        page = tmp_path / f"atlas_{width}.html"
        page.write_text(atlas_html(info, [role]).replace("</body>", _MEASURE + "</body>"))
        dom, console = open_page(binary, page, tmp_path, f"--window-size={width},900", "--dump-dom")
        assert console == []
        assert dom.count('class="cell') == n_layers * n_heads
        layout = json.loads(
            re.search(r"data-layout=\"([^\"]*)\"", dom).group(1).replace("&quot;", '"')
        )
        assert layout["inside_viewport"] and not layout["page_wider_than_viewport"], layout
        assert layout["last_head_reachable"], layout  # scroll to it, none is cut off
        assert layout["layer_labels_stick"] and layout["head_labels_stick"], layout
        assert layout["cell_width"] >= 80 and layout["chip_font_px"] >= 10, layout  # legible
        if width == 1400 and n_heads <= 9:  # a small model's whole grid shows at once
            assert layout["fits_without_scrolling"], layout
