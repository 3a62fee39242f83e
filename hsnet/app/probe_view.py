"""The probe view as HTML: per support and pyramid level, every layer's map of the probed point, on one scale.

Pictures are inline figures with alt text and captions below them; a map opens
large over the page when clicked or activated by keyboard, and closes the same way.
"""
from __future__ import annotations

import base64
import html
import io

from PIL import Image

from ..visualize import colourbar, fit, heatmap, level_title, mark_point, shared_scale
from .view import PROBE_TILE, Exploration

LEVELS = (4, 3, 2)  # pyramid levels, deepest first, as the model stacks them
OVER_PHOTO, ALONE = "over the photo", "alone"
PROBE_SCALE_LABEL = "Correlation of the probed point with each support pixel (cosine)"
PROBE_EMPTY = ("<p class='hs-note'>Segment first, then click a point on the result (or type its x and y above and "
               "press Probe): this view then shows, for each support, how that point correlates with every support "
               "pixel, layer by layer.</p>")


def data_url(image: Image.Image) -> str:
    """``image`` as an inline PNG for the page's HTML views."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False, compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def figure(image: Image.Image, caption: str, alt: str, classes: str = "hs-fig", enlarge: bool = False) -> str:
    """An HTML figure: the picture inline, its alt text, its caption below it; with ``enlarge``, a larger view."""
    picture = (f"<img src='{data_url(image)}' alt='{html.escape(alt, quote=True)}' width='{image.width}' "
               f"height='{image.height}'>")
    if enlarge:  # opening the <details> shows the same picture large (CSS), by mouse, touch or keyboard
        picture = (f"<details class='hs-enlarge'><summary aria-label='{html.escape(alt, quote=True)}: press to show "
                   f"larger or smaller'>{picture}</summary></details>")
    return f"<figure class='{classes}'>{picture}<figcaption>{html.escape(caption)}</figcaption></figure>"


def probe_html(view: Exploration | None, mode: str) -> str:
    """The probe view of ``view``'s probed point (PROBE_EMPTY before a point is probed)."""
    if view is None or view.point is None:
        return PROBE_EMPTY
    x, y = view.point
    scale = shared_scale([m.values for maps in view.probe for m in maps], PROBE_SCALE_LABEL)
    small = fit(view.overlay, PROBE_TILE * 2)
    to_small = view.scale * small.width / view.overlay.width  # query pixels to thumbnail pixels
    marked = mark_point(small, x * to_small, y * to_small)
    parts = [f"<p class='hs-note'>Query point ({x:.0f}, {y:.0f}), marked on the result. Bright: support pixels "
             f"that look like that point to this layer. One scale for every map below: {scale.range_text}. "
             "Click a map for a larger view.</p><div class='hs-probe-head'>",
             figure(marked, "The probed point", f"The query with the probed point ({x:.0f}, {y:.0f}) marked",
                    "hs-fig hs-scale"),
             figure(colourbar(scale, width=420), "Colour scale of every probe map", f"Colour scale: {scale.range_text}",
                    "hs-fig hs-scale"), "</div>"]
    for k, (support, maps) in enumerate(zip(view.supports, view.probe), start=1):
        parts.append(f"<section class='hs-support' aria-label='Support {k}'><h3>Support {k}</h3>")
        for level in LEVELS:
            level_maps = [m for m in maps if m.level == level]
            parts.append(f"<h4>{html.escape(level_title(level, len(level_maps)))}</h4><div class='hs-grid'>")
            photo = support if mode == OVER_PHOTO else None
            parts += [figure(heatmap(m.values, support.size, scale, photo), m.name,
                             f"Support {k}, {m.name}: correlation with the query point ({x:.0f}, {y:.0f})",
                             enlarge=True)
                      for m in level_maps]
            parts.append("</div>")
        parts.append("</section>")
    return "".join(parts)
