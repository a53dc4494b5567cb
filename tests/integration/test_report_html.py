"""The HTML report opened in real headless Chromium: the page renders its charts (screenshot + DOM)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from tierroute.ledger import Ledger
from tierroute.report import build_report
from tierroute.report_html import CHART_IDS, PALETTE, render_html, write_html

from .test_report import synthetic_rows

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():  # install Debian's package (fails loudly when it cannot)
        out = subprocess.run(["bash", str(ROOT / "scripts" / "ensure_chromium.sh")], capture_output=True, text=True)
        assert out.returncode == 0, f"scripts/ensure_chromium.sh failed:\n{out.stderr}"
    return CHROMIUM


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    url = f"sqlite:///{tmp_path_factory.mktemp('l') / 'l.db'}"
    ledger = Ledger(url)
    for r in synthetic_rows(400):
        ledger.writer.put(r)
    assert ledger.close()
    return build_report(url, tiers=["budget", "mid", "premium"])


def run(chromium: Path, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp / f"profile-{len(list(tmp.iterdir()))}"
    return subprocess.run(
        [str(chromium), *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True, timeout=120
    )


def test_page_is_self_contained(report: dict[str, Any]) -> None:
    page = render_html(report)
    assert "<script" not in page and not re.search(r"(src|href)=[\"']?(https?:)?//", page)
    for chart in CHART_IDS:
        assert f'id="{chart}"' in page


def test_chromium_renders_the_charts(chromium: Path, report: dict[str, Any], tmp_path: Path) -> None:
    page = write_html(report, tmp_path / "report.html", tiers=["budget", "mid", "premium"])
    png = tmp_path / "shot.png"
    out = run(chromium, tmp_path, f"--screenshot={png}", "--window-size=1280,2000", page.as_uri())
    assert out.returncode == 0 and png.exists(), out.stderr[-2000:]
    img = Image.open(png).convert("RGB")
    assert img.size == (1280, 2000)
    small = img.resize((320, 500))
    colors = small.getcolors(maxcolors=1 << 20) or []
    assert len(colors) > 100, f"only {len(colors)} colours: a blank page?"
    background = max(colors)[1]
    painted = sum(n for n, c in colors if sum(abs(a - b) for a, b in zip(c, background)) > 30)
    assert painted / (320 * 500) > 0.05
    # the chart colours are on screen: the SVG bars and lines were drawn
    full = img.getcolors(maxcolors=1 << 22) or []
    present = {c for _, c in full}
    for hex_colour in PALETTE[:3]:
        rgb = tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
        assert rgb in present, f"chart colour {hex_colour} not rendered"

    dom = run(chromium, tmp_path, "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    for chart in CHART_IDS:
        assert re.search(rf'<svg[^>]*id="{chart}"', html), chart
    bars = len(re.findall(r'<rect class="bar"', html))
    assert bars >= len(report["timeline"]) and '<polyline class="line"' in html and '<rect class="cell"' in html
    assert f"{report['requests']:,}" in html and "routing accuracy" in html
