"""The app in a real browser: Debian's headless Chromium driven by Playwright, at a desktop and a phone viewport.

Each viewport loads the page, runs the 5-shot example, clicks the result, and then
checks what a visitor sees: the result and the probe brought into view, no picture or
caption of the layer, probe and vote views clipped, text contrast (WCAG AA, from the
computed styles), alt text and named canvases, and, on a phone, every tab in sight.
Screenshots go to ``artifacts/``. Without /usr/bin/chromium the tests are skipped on a
developer's machine and fail in CI, where a missing browser must not pass silently.
"""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hsnet.serving import MAX_LABEL_QUERIES

pytest_plugins = ["app_fixtures"]

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
VIEWPORTS = {"desktop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}
EXAMPLE = "Ancient coins, 5-shot"
SHOTS = 5
LAYERS = 13  # ResNet-50

if not CHROMIUM.exists():
    if os.environ.get("CI"):
        raise RuntimeError(f"{CHROMIUM} is missing in CI; install Debian's chromium (make chromium)")
    pytest.skip(f"{CHROMIUM} is missing; install it with `apt-get install chromium` (make test does)",
                allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect
pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(600)]

# Boxes of every picture and caption in ``root``, and of the container each must fit in.
CLIPPED = """(root) => {
  const page = document.documentElement.clientWidth;
  const out = [];
  for (const el of root.querySelectorAll('img, figcaption, .caption-label')) {
    const box = el.getBoundingClientRect();
    if (!box.width || !box.height) { out.push(`${el.tagName} ${el.alt || el.textContent} has no size`); continue; }
    const holder = el.closest('figure, .thumbnail-item, .image-container, [data-testid=image], .block') || root;
    const frame = holder.getBoundingClientRect();
    const name = (el.alt || el.textContent || el.tagName).trim().slice(0, 60);
    if (box.left < frame.left - 1 || box.right > frame.right + 1 || box.top < frame.top - 1 ||
        box.bottom > frame.bottom + 1) out.push(`${name} sticks out of its container`);
    if (box.left < -1 || box.right > page + 1) out.push(`${name} is outside the page's width`);
    if (el.scrollWidth > el.clientWidth + 1 && el.tagName !== 'IMG') out.push(`${name} is cut short`);
    for (let up = el.parentElement; up && up !== document.body; up = up.parentElement) {
      const style = getComputedStyle(up);
      if (/(hidden|clip|auto|scroll)/.test(style.overflow + style.overflowX + style.overflowY)) {
        const b = up.getBoundingClientRect();
        if (box.bottom > b.bottom + 1 || box.right > b.right + 1 || box.top < b.top - 1 || box.left < b.left - 1) {
          out.push(`${name} is clipped by a scrolling or hiding container`); break;
        }
      }
    }
  }
  return out;
}"""

# Whether ``el`` is what the page shows at its centre once scrolled to (not drawn over by something else).
UNCOVERED = """(el) => {
  el.scrollIntoView({block: 'center'});
  const box = el.getBoundingClientRect();
  const top = document.elementFromPoint(box.left + box.width / 2, box.top + box.height / 2);
  return !!top && el.contains(top);
}"""

# Every visible text's contrast against the background it is drawn on (WCAG 2.1 relative luminance).
CONTRAST = """() => {
  const parse = (c) => { const m = c.match(/[\\d.]+/g) || []; return m.map(Number); };
  const linear = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  const lum = ([r, g, b]) => [r, g, b].map(linear)
      .reduce((s, v, i) => s + v * [0.2126, 0.7152, 0.0722][i], 0);
  const over = (top, bottom) => {
    const a = top.length > 3 ? top[3] : 1;
    return [0, 1, 2].map(i => top[i] * a + bottom[i] * (1 - a));
  };
  const background = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c.length && !(c.length > 3 && c[3] === 0)) { layers.push(c); if (c.length === 3 || c[3] === 1) break; }
    }
    return layers.reverse().reduce((under, c) => over(c, under), [255, 255, 255]);
  };
  const failures = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const seen = new Set();
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement;
    if (!node.textContent.trim() || seen.has(el) || el.closest('footer, svg, [aria-hidden=true]')) continue;
    seen.add(el);
    const style = getComputedStyle(el);
    const box = el.getBoundingClientRect();
    if (style.visibility === 'hidden' || style.display === 'none' || !box.width || !box.height ||
        +style.opacity === 0) continue;
    const fg = over(parse(style.color), background(el));
    const bg = background(el);
    const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
    const ratio = (a + 0.05) / (b + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && +style.fontWeight >= 700);
    const text = node.textContent.trim().slice(0, 50);
    if (ratio < (large ? 3 : 4.5)) failures.push(`${ratio.toFixed(2)}:1 at ${size}px: "${text}"`);
  }
  return failures;
}"""

UNNAMED = """() => [
  ...[...document.querySelectorAll('img')].filter(i => i.getBoundingClientRect().width && !(i.alt || '').trim())
     .map(i => `an image without alt text in ${i.closest('[id]')?.id}`),
  ...[...document.querySelectorAll('canvas')].filter(c => !(c.getAttribute('aria-label') || '').trim())
     .map(c => `a canvas without a name in ${c.closest('[id]')?.id}`),
  ...[...document.querySelectorAll('img')].filter(i => i.getBoundingClientRect().width && i.alt.trim() === 'picture')
     .map(i => `an image called only "picture" in ${i.closest('[id]')?.id}`),
  ...[...document.querySelectorAll('button')].filter(b => b.getBoundingClientRect().width && b.querySelector('img')
       && !b.textContent.trim() && !(b.getAttribute('aria-label') || '').trim())
     .map(b => `a picture button without a name in ${b.closest('[id]')?.id}`),
]"""


def in_view(page, selector: str) -> bool:
    """Whether the element's top part is inside the viewport now."""
    return page.locator(selector).first.evaluate(
        "e => { const b = e.getBoundingClientRect(); return b.top < innerHeight - 40 && b.bottom > 40; }")


def open_label_many(page):
    """The "Label many" section, opened if it is closed."""
    section = page.locator("#label-many")
    if not page.locator("#label-photos").is_visible():
        section.get_by_text("Label many photos with these supports").click()
        expect(page.locator("#label-photos")).to_be_visible()
    return section


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module", params=list(VIEWPORTS))
def explored(request, browser, app_server) -> Iterator:
    """A page at one viewport after the 5-shot example was segmented and a point of the result clicked.

    The checks of what Segment and the click brought into view are made here, as they happen.
    """
    name = request.param
    context = browser.new_context(viewport=VIEWPORTS[name])
    page = context.new_page()
    page.name = name
    page.goto(app_server.url)
    expect(page.locator(".hs-ok")).to_be_visible(timeout=120_000)  # the banner: weights loaded
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"app-{name}-start.png"), full_page=True)
    page.get_by_role("button", name=EXAMPLE).click()
    expect(page.locator("#support-1-mask img")).to_be_visible(timeout=30_000)
    page.get_by_role("button", name="Segment", exact=True).click()
    expect(page.get_by_text("query is foreground")).to_be_visible(timeout=240_000)
    page.wait_for_timeout(800)
    assert in_view(page, "#result"), "the result was not brought into view after Segment"
    page.screenshot(path=str(ARTIFACTS / f"app-{name}-result.png"))

    result = page.locator("#result img")
    box = result.bounding_box()
    result.click(position={"x": box["width"] * 0.3, "y": box["height"] * 0.5})
    expect(page.locator("#probe figure").first).to_be_visible(timeout=120_000)
    page.wait_for_timeout(800)
    assert page.get_by_role("tab", name="Probe").get_attribute("aria-selected") == "true"
    assert in_view(page, "#probe"), "the probe was not brought into view after the click"
    page.screenshot(path=str(ARTIFACTS / f"app-{name}-probe.png"))
    yield page
    context.close()


def test_the_probe_shows_every_layer_of_every_support_unclipped(explored) -> None:
    page = explored
    page.get_by_role("tab", name="Probe").click()
    probe = page.locator("#probe")
    expect(probe.locator("figcaption", has_text="The probed point")).to_be_visible()
    assert probe.locator("figure img").count() == 2 + SHOTS * LAYERS
    assert probe.evaluate(CLIPPED) == []
    widths = probe.locator(".hs-grid figure img").evaluate_all("imgs => imgs.map(i => i.getBoundingClientRect().width)")
    assert min(widths) >= 120, f"probe maps {min(widths):.0f} px wide are too small to read"


def test_every_layer_map_is_shown_whole_with_its_caption_below(explored) -> None:
    page = explored
    page.get_by_role("tab", name="Layers").click()
    for level, count in ((4, 3), (3, 6), (2, 4)):
        gallery = page.locator(f"#level-{level}")
        gallery.scroll_into_view_if_needed()
        expect(gallery.locator("img")).to_have_count(count)
        assert gallery.evaluate(CLIPPED) == [], f"level {level}"
        overlaps = gallery.evaluate("""g => [...g.querySelectorAll('.thumbnail-item')].filter(t => {
            const img = t.querySelector('img').getBoundingClientRect(), cap = t.querySelector('.caption-label');
            return cap && cap.getBoundingClientRect().top < img.bottom - 1; }).length""")
        assert overlaps == 0, f"captions cover the level {level} thumbnails"
    expect(page.locator("#layer-scale img")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / f"app-{page.name}-layers.png"), full_page=True)

    thumbnail = page.locator("#level-4 .thumbnail-item img").first.bounding_box()
    page.locator("#level-4 .thumbnail-item").first.click()  # a larger view of one layer
    larger = page.locator("#level-4 .preview img").first
    expect(larger).to_be_visible()
    page.wait_for_timeout(500)
    assert larger.bounding_box()["width"] * larger.bounding_box()["height"] > 2 * thumbnail["width"] * thumbnail["height"]
    page.keyboard.press("Escape")  # closes the larger view
    expect(page.locator("#level-4 .preview")).to_have_count(0)


def test_the_vote_view_shows_each_support_and_the_vote_map_with_full_captions(explored) -> None:
    page = explored
    page.get_by_role("tab", name="Vote").click()
    shots = page.locator("#support-predictions")
    expect(shots.locator("img")).to_have_count(SHOTS)
    shots.scroll_into_view_if_needed()
    assert shots.evaluate(CLIPPED) == []
    captions = shots.locator(".caption-label").all_inner_texts()
    assert [c.split(":")[0] for c in captions] == [f"Support {i} alone" for i in range(1, SHOTS + 1)]
    vote = page.locator("#vote-map")
    expect(vote.locator("img")).to_be_visible()
    assert vote.evaluate(CLIPPED) == []
    label = vote.locator("[data-testid=block-label]").bounding_box()
    picture = vote.locator("img").bounding_box()
    assert label["y"] + label["height"] <= picture["y"] + 1, "the vote map's label covers the picture"
    page.screenshot(path=str(ARTIFACTS / f"app-{page.name}-vote.png"))


def test_text_meets_wcag_aa_contrast_and_pictures_have_names(explored) -> None:
    page = explored
    open_label_many(page)  # its text is checked too
    for tab in ("Layers", "Probe", "Vote"):
        page.get_by_role("tab", name=tab).click()
        page.wait_for_timeout(300)
        failures = page.evaluate(CONTRAST)
        assert failures == [], f"{tab}: {failures}"
        assert page.evaluate(UNNAMED) == [], tab
    page.get_by_role("tab", name="Layers").click()
    page.locator("#level-3 .thumbnail-item").first.hover()  # a hovered caption stays readable
    page.wait_for_timeout(300)
    assert page.evaluate(CONTRAST) == [], "with a layer map hovered"


def test_the_download_is_named_in_full(explored) -> None:
    button = explored.locator("#mask-png")
    expect(button).to_contain_text("coins_query_mask.png")
    assert button.evaluate("b => b.scrollWidth <= b.clientWidth + 1")


def test_on_a_phone_every_tab_is_in_sight_and_supports_come_before_segment(explored) -> None:
    page = explored
    if page.name != "phone":
        pytest.skip("phone layout")
    for tab in ("Support 1", "2", "3", "4", "5", "Layers", "Probe", "Vote"):
        expect(page.get_by_role("tab", name=tab, exact=True)).to_be_visible()
    assert page.locator("#support-tabs").bounding_box()["y"] < page.locator("#segment-button").bounding_box()["y"]
    assert page.locator("#segment-button").bounding_box()["y"] < page.locator("#result").bounding_box()["y"]


def test_label_many_fills_its_gallery_from_the_main_views_supports(explored, tmp_path: Path) -> None:
    page = explored
    rng = np.random.default_rng(5)
    photos = []
    for name, size in (("first.png", (90, 60)), ("second.png", (60, 120))):
        Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(tmp_path / name)
        photos.append(str(tmp_path / name))
    section = open_label_many(page)
    expect(section.get_by_text(f"Photos to label: up to {MAX_LABEL_QUERIES} images")).to_be_visible()
    page.locator("#label-photos input[type=file]").set_input_files(photos)
    expect(page.locator("#label-photos")).to_contain_text("second", timeout=30_000)
    page.get_by_role("button", name="Label them").click()
    expect(page.locator("#label-progress")).to_contain_text("2 of 2 photos labelled", timeout=240_000)
    gallery = page.locator("#label-gallery")
    expect(gallery.locator("img")).to_have_count(2)
    for image in gallery.locator("img").all():  # thumbnails load lazily: each is brought into view first
        image.scroll_into_view_if_needed()
        expect(image).to_have_js_property("complete", True, timeout=60_000)
    page.wait_for_function("() => [...document.querySelectorAll('#label-gallery img')]"
                           ".every(i => i.complete && i.naturalWidth > 0)", timeout=60_000)
    assert gallery.evaluate(CLIPPED) == []
    expect(page.locator("#label-zip")).to_be_enabled()
    page.screenshot(path=str(ARTIFACTS / f"app-{page.name}-label.png"))


def test_tabbing_past_the_checkpoint_menu_closes_its_list_and_moves_on(explored) -> None:
    page = explored
    page.locator("#weights-menu input").focus()
    page.keyboard.press("Tab")
    page.wait_for_function("() => !document.querySelector('#weights-menu ul.options') || "
                           "!document.querySelector('#weights-menu ul.options').getClientRects().length",
                           timeout=10_000)
    page.wait_for_function("() => document.activeElement && document.activeElement !== document.body && "
                           "!document.querySelector('#weights-menu').contains(document.activeElement)",
                           timeout=10_000)
    focused = page.evaluate("() => document.activeElement.closest('[id], fieldset')?.textContent.slice(0, 40) || "
                            "document.activeElement.tagName")
    assert "K-shot rule" in focused, f"after the checkpoint menu, Tab went to {focused!r}"


class SlowMissingHub:
    """A Hub on 127.0.0.1 that takes ``delay_s`` to answer each request, then says the repository does not exist."""

    def __init__(self, delay_s: float):
        delay = delay_s

        class Handler(BaseHTTPRequestHandler):
            def _missing(self) -> None:
                time.sleep(delay)
                self.send_response(404)
                self.send_header("X-Error-Code", "RepositoryNotFound")
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_HEAD = _missing

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    def __enter__(self) -> str:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_loading_weights_shows_progress_then_a_failure_without_server_details(browser, tmp_path: Path,
                                                                             launch_app) -> None:
    context = browser.new_context(viewport=VIEWPORTS["phone"])
    page = context.new_page()
    with SlowMissingHub(delay_s=8) as endpoint, launch_app("someone/hsnet-not-cached", tmp_path / "app.log", env={
            "HF_HUB_OFFLINE": "0", "HF_ENDPOINT": endpoint, "HF_HOME": str(tmp_path / "hf"),
            "HF_HUB_ETAG_TIMEOUT": "30", "HF_HUB_DOWNLOAD_TIMEOUT": "30"}) as served:
        page.goto(served.url)
        banner = page.locator("#weights-banner")
        expect(banner.locator(".hs-wait")).to_be_visible(timeout=30_000)
        expect(banner).to_contain_text("Loading checkpoint someone/hsnet-not-cached")
        expect(banner.locator("progress")).to_be_attached()
        ARTIFACTS.mkdir(exist_ok=True)
        banner.scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "app-loading.png"))
        expect(banner.locator(".hs-missing")).to_be_visible(timeout=180_000)
        text = page.locator("body").inner_text()
        for secret in (str(tmp_path), endpoint, "HF_", "HSNET_", "127.0.0.1"):
            assert secret not in text, f"the page shows {secret!r}"
        assert page.evaluate(CONTRAST) == []
        banner.scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "app-failed.png"))
    context.close()


def test_an_error_stays_under_segment_clears_stale_pictures_and_goes_with_the_next_run(browser, app_server,
                                                                                        tmp_path: Path) -> None:
    context = browser.new_context(viewport=VIEWPORTS["desktop"])
    page = context.new_page()
    page.goto(app_server.url)
    expect(page.locator(".hs-ok")).to_be_visible(timeout=120_000)
    expect(page.locator("#mask-png")).to_be_disabled()  # nothing to download before a result
    page.get_by_role("button", name="Segment", exact=True).click()
    message = page.locator("#segment-error .hs-error")
    expect(message).to_contain_text("no query image", timeout=60_000)
    ARTIFACTS.mkdir(exist_ok=True)
    message.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "app-desktop-error.png"))
    page.wait_for_timeout(11_000)  # longer than a pop-up lives: the message is still there
    expect(message).to_be_visible()
    expect(page.locator("[data-testid=status-tracker] .error")).to_have_count(0)  # no bare badges
    page.get_by_role("button", name="Person, 1-shot").click()
    expect(page.locator("#support-1-mask img")).to_be_visible(timeout=30_000)
    page.get_by_role("button", name="Segment", exact=True).click()
    expect(page.get_by_text("query is foreground")).to_be_visible(timeout=240_000)
    expect(message).to_have_count(0)
    expect(page.locator("#mask-png")).to_be_enabled()
    notes = tmp_path / "notes.jpg"
    notes.write_text("a text file with a photo's name\n")
    page.locator("#support-editor-1 input[type=file]").first.set_input_files(str(notes))
    upload_error = page.locator(".hs-upload-error[data-editor=support-editor-1]")
    expect(upload_error).to_contain_text("Support 1: notes.jpg is not an image", timeout=60_000)  # said at once
    assert page.evaluate(UNCOVERED, upload_error.element_handle())  # where a visitor sees it, not under the canvas
    dropped = page.evaluate_handle("""() => {
        const files = new DataTransfer();
        files.items.add(new File(['a text file'], 'dropped.png', {type: 'image/png'}));
        return files;
    }""")
    page.locator("#support-editor-1").dispatch_event("drop", {"dataTransfer": dropped})
    expect(upload_error).to_contain_text("Support 1: dropped.png is not an image", timeout=60_000)  # said the same
    expect(upload_error).to_have_count(1)  # the note of the earlier file is gone
    assert page.evaluate(UNCOVERED, upload_error.element_handle())
    upload_error.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "app-desktop-upload-error.png"))
    page.locator("#query-image input[type=file]").set_input_files(str(notes))
    expect(message).to_contain_text("query image", timeout=60_000)
    page.get_by_role("button", name="Segment", exact=True).click()
    expect(message).to_contain_text("query image", timeout=60_000)
    expect(page.locator("#result img")).to_have_count(0)  # the previous result is not left looking current
    expect(page.locator("#mask-png")).to_be_disabled()
    context.close()


def test_the_probe_works_by_keyboard_and_its_maps_open_larger(explored) -> None:
    page = explored
    page.get_by_role("tab", name="Probe").click()
    page.locator("#probe-point input").first.fill("40")
    page.locator("#probe-point input").nth(1).fill("30")
    page.locator("#probe-point input").nth(1).press("Enter")
    expect(page.locator("#probe")).to_contain_text("Query point (40, 30)", timeout=120_000)
    summary = page.locator("#probe .hs-enlarge summary").first
    small = summary.locator("img").bounding_box()
    summary.focus()
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelector('#probe .hs-enlarge').open")
    large = summary.locator("img").bounding_box()
    assert large["width"] > 2 * small["width"] and large["y"] >= 0
    page.keyboard.press("Enter")
    page.wait_for_function("() => !document.querySelector('#probe .hs-enlarge').open")


def test_on_a_phone_layer_maps_come_two_a_row(explored) -> None:
    page = explored
    page.get_by_role("tab", name="Layers").click()
    tops = page.locator("#level-3 .thumbnail-item").evaluate_all(
        "items => items.map(i => Math.round(i.getBoundingClientRect().top))")
    assert len(set(tops)) <= (len(tops) + 1) // 2, f"layer maps one per row: {tops}"


def test_uploaded_photos_pass_the_upload_check_and_segment(browser, app_server, tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    paths = {name: tmp_path / name for name in ("query.png", "support.png", "mask.png")}
    Image.fromarray(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)).save(paths["query.png"])
    Image.fromarray(rng.integers(0, 256, (100, 140, 3), dtype=np.uint8)).save(paths["support.png"])
    mask = np.zeros((100, 140), np.uint8)
    mask[20:80, 30:110] = 255
    Image.fromarray(mask).save(paths["mask.png"])
    context = browser.new_context(viewport=VIEWPORTS["desktop"])
    page = context.new_page()
    page.goto(app_server.url)
    expect(page.locator(".hs-ok")).to_be_visible(timeout=120_000)
    page.locator("#query-image input[type=file]").set_input_files(str(paths["query.png"]))
    page.locator("#support-editor-1 input[type=file]").first.set_input_files(str(paths["support.png"]))
    page.get_by_text("...or upload its mask").first.click()
    page.locator("#support-1-mask input[type=file]").set_input_files(str(paths["mask.png"]))
    expect(page.locator("#support-1-mask img")).to_be_visible(timeout=30_000)
    page.get_by_role("button", name="Segment", exact=True).click()
    expect(page.get_by_text("query is foreground")).to_be_visible(timeout=240_000)
    expect(page.locator("#segment-error .hs-error")).to_have_count(0)
    context.close()
