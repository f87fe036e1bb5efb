"""Pages written by interp open in a real headless Chromium: no console messages, plot drawn.

Needs a Chromium binary (Debian: ``apt-get install -y chromium``; or set ``INTERP_CHROMIUM`` to
a Chrome/Chromium executable); skipped with the reason when there is none. Chromium prints every
console message of the page to stderr as ``...:CONSOLE:<line>] "<message>", source: ...`` (at
INFO level whatever the console method), so a clean page prints none: a plotly page logs
nothing, and any message -- an uncaught error, a missing plotly.js -- fails the test. Negative
controls check that such errors are indeed caught.
"""

import os
import shutil
import subprocess

import pytest
import torch

from interp import plots
from interp.circuit import Circuit
from interp.export import export_circuit

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
NASTY = "a<b> & \"c\" 'd' </text><script>alert(1)</script>"


@pytest.fixture(scope="module")
def chromium():
    binary = os.environ.get("INTERP_CHROMIUM") or next(
        filter(None, map(shutil.which, CANDIDATES)), None
    )
    if not binary:
        pytest.skip(
            f"no Chromium binary found "
            f"(tried {', '.join(CANDIDATES)} on PATH and $INTERP_CHROMIUM); "
            f"install it with `apt-get install -y chromium`"
        )
    return binary


def open_page(binary, page, tmp_path, *action):
    """Load `page` headless; return (stdout, console messages). `action`: --dump-dom or
    --screenshot=..."""
    args = [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=5000",
        "--window-size=800,600",
        *action,
        page.resolve().as_uri(),
    ]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, f"chromium exited {proc.returncode}: {proc.stderr[-2000:]}"
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    return proc.stdout, console


@pytest.fixture
def heatmap_page(tmp_path):
    # layer 0: strongly positive (blue in RdBu), layer 1: strongly negative (red)
    fig = plots.head_heatmap(torch.tensor([[1.0, 1.0], [-1.0, -1.0]]), title="browser check")
    return plots.save_html(fig, tmp_path / "site" / "heatmap.html")


def test_plotly_page_loads_clean_and_shows_the_plot(chromium, heatmap_page, tmp_path):
    html = heatmap_page.read_text()
    assert 'src="plotly.min.js"' in html and "cdn" not in html.lower()
    dom, console = open_page(chromium, heatmap_page, tmp_path, "--dump-dom")
    assert console == []
    assert dom.count('class="main-svg"') >= 1  # plotly drew its SVG layers
    assert 'class="heatmaplayer' in dom and 'class="hm"' in dom
    assert "browser check" in dom  # the title was rendered


def test_screenshot_shows_the_heatmap_colours(chromium, heatmap_page, tmp_path):
    Image = pytest.importorskip(
        "PIL.Image", reason="Pillow reads the screenshot (it comes with matplotlib)"
    )

    shot = tmp_path / "shot.png"
    _, console = open_page(chromium, heatmap_page, tmp_path, f"--screenshot={shot}")
    assert console == []
    pixels = list(Image.open(shot).convert("RGB").getdata())
    blue = sum(b > r + 50 and b > g + 30 for r, g, b in pixels)  # RdBu's dark blue, (5, 48, 97)
    red = sum(r > b + 50 and r > g + 50 for r, g, b in pixels)  # RdBu's dark red, (103, 0, 31)
    assert blue > 0.1 * len(pixels) and red > 0.1 * len(pixels), (blue, red, len(pixels))


def test_circuit_exports_open_clean(chromium, tmp_path):
    circuit = (
        Circuit("m", "x")
        .add_node("L0H1", role=NASTY, score=0.5)
        .add_node("L1H0", "mover")
        .add_edge("L0H1", "L1H0", "q", 0.3)
        .add_edge("L1H0", "logits")
    )
    svg = export_circuit(circuit, tmp_path / "c.svg")
    dom, console = open_page(chromium, svg, tmp_path, "--dump-dom")
    assert console == [] and "parsererror" not in dom and "error on line" not in dom.lower()
    assert "<script>alert" not in dom and "L1H0" in dom
    page = export_circuit(circuit, tmp_path / "c.html")
    dom, console = open_page(chromium, page, tmp_path, "--dump-dom")
    assert console == [] and 'class="main-svg"' in dom and "mover" in dom


def test_console_errors_are_detected(chromium, heatmap_page, tmp_path):
    """Negative controls: the checks above would see a broken page."""
    bad = tmp_path / "bad.html"
    bad.write_text('<html><body><script>throw new Error("planted failure")</script></body></html>')
    _, console = open_page(chromium, bad, tmp_path, "--dump-dom")
    assert any("planted failure" in line for line in console)
    (heatmap_page.parent / "plotly.min.js").unlink()  # the page without its plotly.js
    dom, console = open_page(chromium, heatmap_page, tmp_path, "--dump-dom")
    assert any("Plotly is not defined" in line for line in console)
    assert 'class="main-svg"' not in dom
