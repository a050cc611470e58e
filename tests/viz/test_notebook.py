"""``attnkit.viz.show``: the explorer inline in a notebook, as Jupyter displays it (``_repr_html_`` put in the
output cell): the iframe's srcdoc, parsed by Python's HTML parser, is exactly the explorer page, and in headless
Chromium with the network blocked the framed page runs and shows Python's weights."""

from __future__ import annotations

from html.parser import HTMLParser

import numpy as np
import pytest

from attnkit.viz import show
from attnkit.viz.explorer import explorer_data, explorer_html
from tests.viz.test_browser import _browser_or_skip, _check_row, _record, offline_page


class _Frames(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.frames: list[dict[str, str | None]] = []

    def handle_starttag(self, tag, attrs):
        if tag == "iframe":
            self.frames.append(dict(attrs))


def test_repr_html_is_one_sandboxed_iframe_holding_the_page():
    rec = _record()
    view = show(rec, methods=("raw", "rollout"), height=500)
    parser = _Frames()
    parser.feed(view._repr_html_())
    (frame,) = parser.frames
    assert frame["srcdoc"] == explorer_html(explorer_data(rec, methods=("raw", "rollout"))) == view.page
    assert frame["sandbox"] == "allow-scripts" and "height:500px" in frame["style"]
    assert "https://" not in view.page and "http://" not in view.page and "<script src" not in view.page


def test_save_writes_the_page(tmp_path):
    view = show(_record())
    assert view.save(tmp_path / "e.html").read_text(encoding="utf-8") == view.page


def test_bad_height():
    with pytest.raises(ValueError, match="Expected height a positive int"):
        show(_record(), height=0)


def test_inline_explorer_runs_in_chromium(tmp_path):
    sync_playwright = _browser_or_skip()
    rec = _record()
    cell = tmp_path / "notebook.html"  # what a notebook's output area holds
    cell.write_text(f"<!doctype html><html><body><div class='output'>{show(rec)._repr_html_()}</div></body></html>",
                    encoding="utf-8")
    with sync_playwright() as p:
        browser, page, outside, errors = offline_page(p, tmp_path, allowed=("file:", "about:"))
        page.goto(cell.resolve().as_uri())
        frame = page.frame_locator("iframe")
        frame.locator("body[data-ready='1']").wait_for()
        inner = next(f for f in page.frames if f != page.main_frame)
        inner.select_option("#layer", "1")
        inner.select_option("#head", "0")
        inner.click("#from .tok[data-i='3']")
        _check_row(inner, np.asarray(rec.attentions[1][0, 3].double()))
        browser.close()
    assert outside == [] and errors == []
