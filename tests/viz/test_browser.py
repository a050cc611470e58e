"""The HTML explorer in a real browser: Debian's headless Chromium driven by Playwright, network blocked.

Skipped, with the reason, when the playwright package or /usr/bin/chromium is missing (``make browser``
installs Chromium as root).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from attnkit.viz.explorer import write_explorer
from attnkit.viz.record import AttentionRecord
from tests.viz import reference as ref

CHROMIUM = os.environ.get("ATTNKIT_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
L, H, T = 3, 2, 7  # layers, heads, tokens: pairwise different
TOKENS = ["[CLS]", "ana", "va", "al", "cine", "hoy", "[SEP]"]


def _browser_or_skip():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright Python package is not installed: the browser test cannot run")
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.skip(f"Chromium is not installed at {CHROMIUM} (run `make browser` as root): the browser test cannot run")
    return sync_playwright


def offline_page(p, tmp_path, allowed=("file:",)):
    """Chromium with one page that may load URLs of the ``allowed`` schemes only (``file:``; a notebook's
    inline frame also needs ``about:``): ``(browser, page, outside, errors)``, where ``outside`` collects every
    other URL the page asked for (blocked) and ``errors`` its script errors."""
    try:
        browser = p.chromium.launch_persistent_context(str(tmp_path / "profile"), executable_path=CHROMIUM,
                                                       args=FLAGS, headless=True,
                                                       viewport={"width": 1200, "height": 900})
    except Exception as err:  # noqa: BLE001 - a browser that cannot start is reported as a skip
        pytest.skip(f"Chromium at {CHROMIUM} could not start: {str(err).splitlines()[0]}")
    outside, errors = [], []
    page = browser.new_page()
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(allowed)
               else (outside.append(route.request.url), route.abort()))
    page.on("pageerror", lambda e: errors.append(str(e)))
    return browser, page, outside, errors


def _record() -> AttentionRecord:
    g = torch.Generator().manual_seed(3)
    attn = tuple(torch.softmax(2.5 * torch.randn(H, T, T, generator=g), -1) for _ in range(L))
    grads = tuple(torch.randn(H, T, T, generator=g) for _ in range(L))
    return AttentionRecord("bert", TOKENS, attn, grads, output="test", notes=["grad: y = test"])


def _shown(page) -> dict[int, float]:
    rows = page.query_selector_all("#weights tbody tr")
    return {int(r.get_attribute("data-j")): float(r.query_selector(".w").inner_text()) for r in rows}


def _expected(row: np.ndarray) -> dict[int, float]:
    q = np.rint(np.asarray(row, dtype=np.float64) * 100)  # two decimals, the page's rounding
    return {j: q[j] / 100 for j in range(len(row)) if q[j] >= 1}


def _check_row(page, row: np.ndarray) -> None:
    shown, want = _shown(page), _expected(row)
    assert shown.keys() == want.keys()
    for j, w in want.items():
        assert abs(shown[j] - w) < 1e-9, (j, shown[j], w)


def test_explorer_in_chromium(tmp_path):
    sync_playwright = _browser_or_skip()
    rec = _record()
    path = write_explorer(rec, tmp_path / "explorer.html", methods=("raw", "rollout", "grad"))
    with sync_playwright() as p:
        browser, page, outside, errors = _open(p, tmp_path, path)
        _walk_views(page, rec)
        assert len(page.query_selector_all("#grid canvas")) == L  # grad: one map per layer
        page.select_option("#method", "raw")
        assert len(page.query_selector_all("#grid canvas")) == L * (H + 1)  # model view: layers x (heads + mean)
        page.fill("#filter-heads", "1")
        assert len(page.query_selector_all("#grid canvas")) == L * 2
        shot = page.screenshot(full_page=True)
        browser.close()
    assert outside == [] and errors == []
    _assert_not_blank(shot)


def _walk_views(page, rec: AttentionRecord) -> None:
    """Click tokens in each view and compare the page's weights with Python's."""
    attn = [a.double().numpy() for a in rec.attentions]
    page.select_option("#layer", "1")
    page.select_option("#head", "0")
    page.click("#from .tok[data-i='3']")
    _check_row(page, attn[1][0, 3])
    page.select_option("#head", "mean")  # average of the heads
    _check_row(page, attn[1].mean(0)[3])
    page.click("#grid canvas[data-layer='2'][data-head='1']")  # a thumbnail selects layer 2, head 1
    assert page.input_value("#layer") == "2" and page.input_value("#head") == "1"
    _check_row(page, attn[2][1, 3])
    page.select_option("#method", "rollout")
    page.click("#from .tok[data-i='5']")
    _check_row(page, ref.rollout(attn)[5])
    page.select_option("#method", "grad")
    page.select_option("#layer", "0")
    page.hover("#from .tok[data-i='2']")  # hover previews a row as bertviz does
    gw = [np.maximum(attn[0][h] * rec.gradients[0][h].double().numpy(), 0) for h in range(H)]
    g = sum(gw) / H
    _check_row(page, (g / g.max())[2])


def _assert_not_blank(png: bytes) -> None:
    from PIL import Image

    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float64)
    assert pixels.shape[0] > 300 and pixels.shape[1] > 300
    assert pixels.std() > 20  # text, heatmap and thumbnails, not a blank page
    assert (pixels.sum(-1) < 600).mean() > 0.02  # a fair share of non-white pixels


def test_page_is_self_contained(tmp_path):
    path = write_explorer(_record(), tmp_path / "x.html", methods=("raw", "rollout"))
    text = Path(path).read_text(encoding="utf-8")
    assert "<script src" not in text and "<link" not in text and "http://" not in text and "https://" not in text
    assert text.count("<script") == 2  # the data and the inlined script


def _open(p, tmp_path, path):
    """A page of ``path`` in Chromium with the network blocked; returns (browser, page, outside urls, errors)."""
    browser, page, outside, errors = offline_page(p, tmp_path)
    page.goto(Path(path).resolve().as_uri())
    page.wait_for_selector("body[data-ready='1']", timeout=15_000)
    return browser, page, outside, errors


HOSTILE = ["<!--", "</script>", "]]>", "\"q\"", "'s", "{{SCRIPT}}", "<b>x</b>", "&amp;", "\u2028"]


def test_explorer_opens_on_the_method_labels_its_matrix_and_names_input_and_model(tmp_path):
    sync_playwright = _browser_or_skip()
    from dataclasses import replace

    from attnkit.viz.report import write_report

    rec = replace(_record(), text="Ana va al cine hoy", model_name="all-MiniLM-L6-v2")
    write_report(rec, tmp_path / "r", method="rollout", dpi=30)
    with sync_playwright() as p:
        browser, page, outside, errors = _open(p, tmp_path, tmp_path / "r" / "explorer.html")
        assert page.input_value("#method") == "rollout"
        _check_row(page, ref.rollout([a.double().numpy() for a in rec.attentions])[0])
        assert page.inner_text("#input") == "input: Ana va al cine hoy"
        assert page.inner_text("#model") == "model: all-MiniLM-L6-v2 (bert)"
        import json

        heat = page.query_selector("#heat")
        assert json.loads(heat.get_attribute("data-rows")) == TOKENS == json.loads(heat.get_attribute("data-cols"))
        cw, ch = map(int, heat.get_attribute("data-cell").split("x"))
        assert cw == ch and cw >= 10  # a 7 x 7 matrix drawn as a matrix of square cells
        browser.close()
    assert outside == [] and errors == []


def test_captioner_view_keeps_the_image_and_names_regions_by_row_and_column(tmp_path):
    sync_playwright = _browser_or_skip()
    image = np.zeros((60, 150, 3), dtype=np.uint8)  # a wide picture (5:2)
    image[:, :75] = 200
    g = torch.Generator().manual_seed(1)
    rec = AttentionRecord("captioner", [f"r{i}" for i in range(12)], out_tokens=["a", "wide", "picture"],
                          image=image, image_attention=torch.softmax(torch.randn(3, 12, generator=g), -1),
                          region_grid=(3, 4), output="a wide picture")
    path = write_explorer(rec, tmp_path / "c.html", methods=("raw",))
    with sync_playwright() as p:
        browser, page, outside, errors = _open(p, tmp_path, path)
        box = page.query_selector("#region-image").bounding_box()
        assert abs(box["width"] / box["height"] - 2.5) < 0.05  # the image's own proportions
        names = [r.query_selector(".tok-name").inner_text() for r in page.query_selector_all("#weights tbody tr")]
        assert names and all(n.startswith("row ") and ", col " in n for n in names)
        heat = page.query_selector("#heat")
        cw, ch = map(int, heat.get_attribute("data-cell").split("x"))
        assert ch >= 10 and heat.bounding_box()["height"] > 30  # rows of a matrix, not a one-pixel strip
        browser.close()
    assert outside == [] and errors == []


@pytest.mark.parametrize("hostile", HOSTILE)
def test_anything_embedded_is_escaped_for_its_context(tmp_path, hostile):
    sync_playwright = _browser_or_skip()
    out = ["the", f"film{hostile}", "</SCRIPT >"]
    g = torch.Generator().manual_seed(2)
    rec = AttentionRecord("seq2seq", ["la", f"x{hostile}y", "pel"], out_tokens=out,
                          alignment=torch.softmax(torch.randn(3, 3, generator=g), -1),
                          output=f"the film{hostile} </SCRIPT >", notes=[f"note {hostile}"], text=f"la {hostile}",
                          model_name=f"m{hostile}")
    path = write_explorer(rec, tmp_path / "e.html", methods=("raw",), title=f"t {hostile}")
    with sync_playwright() as p:
        browser, page, outside, errors = _open(p, tmp_path, path)
        assert page.title() == f"t {hostile}"
        assert page.inner_text("#output") == f"output: the film{hostile} </SCRIPT >"
        assert page.inner_text("#notes li") == f"note {hostile}"
        assert f"x{hostile}y" in page.inner_text("#to")
        assert page.evaluate("document.querySelectorAll('script').length") == 2  # nothing injected
        browser.close()
    assert outside == [] and errors == []


def test_a_translation_shows_its_gold_links_over_the_alignment(tmp_path):
    sync_playwright = _browser_or_skip()
    from attnkit.data import gold_alignment

    source, target = "abcd", "abcd"
    sure = torch.zeros(5, 6, dtype=torch.bool)  # (T_out + 1, S + 2): <eos> row, <sos>/<eos> columns
    s, _ = gold_alignment("copy", source, target)
    sure[:4, 1:5] = s
    possible = sure.clone()
    possible[0, 2] = True  # one possible-only link, to see both marks
    g = torch.Generator().manual_seed(5)
    rec = AttentionRecord("seq2seq", ["<sos>", *source, "<eos>"], out_tokens=[*target, "<eos>"],
                          alignment=torch.softmax(torch.randn(5, 6, generator=g), -1), output=target,
                          gold=(sure, possible))
    path = write_explorer(rec, tmp_path / "g.html", methods=("raw",))
    with sync_playwright() as p:
        browser, page, outside, errors = _open(p, tmp_path, path)
        assert page.query_selector("#heat").get_attribute("data-gold") == "4,1"  # four sure links, one possible
        marked = [t.inner_text() for t in page.query_selector_all("#to .tok.gold")]
        assert marked == ["a", "b"]  # row 0 ("a"): its sure link to "a" and its possible link to "b"
        assert "gold links" in page.inner_text("#heat-caption")
        browser.close()
    assert outside == [] and errors == []
