"""Pictures of predictions: mask overlays, heatmaps on one shared colour scale with its colourbar, point markers.

Every heatmap of one view is drawn through one ``ColourScale`` so that equal colours
mean equal values across its pictures, and the view shows that scale's colourbar with
the range it maps. Nothing here assumes a particular model's value range: a scale is
either fixed (probabilities, vote shares) or taken from the values shown (``shared_scale``).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib import colormaps
from PIL import Image, ImageDraw, ImageFont

MASK_COLOR = (255, 64, 64)
MARKER_COLOR = (0, 200, 255)
TEXT_COLOR = (33, 37, 41)  # on white: 16:1 contrast
BACKGROUND = (255, 255, 255)


@dataclass(frozen=True)
class ColourScale:
    """Values ``vmin``..``vmax`` mapped through the matplotlib colormap ``cmap``; ``label`` says what they are."""

    vmin: float
    vmax: float
    label: str
    cmap: str = "inferno"

    def colorize(self, values: np.ndarray) -> Image.Image:
        """``values`` as an RGB picture (values outside the range take the end colours)."""
        scaled = np.clip((np.asarray(values, dtype=np.float32) - self.vmin) / max(self.vmax - self.vmin, 1e-8), 0, 1)
        rgb = colormaps[self.cmap](scaled)[..., :3]
        return Image.fromarray((rgb * 255).round().astype(np.uint8))

    @property
    def range_text(self) -> str:
        """The mapped range as people read it, e.g. ``0.00 (dark) to 0.87 (bright)``."""
        return f"{self.vmin:.2f} (dark) to {self.vmax:.2f} (bright)"


def shared_scale(maps: Iterable[np.ndarray], label: str, cmap: str = "inferno") -> ColourScale:
    """One scale for all ``maps``, from their smallest to their largest value: equal colours mean equal values
    across the view, and the full colour range is used whatever range the model's values span."""
    values = [m for m in maps if np.size(m)]
    if not values:
        return ColourScale(0.0, 1.0, label, cmap)
    low, high = min(float(np.min(m)) for m in values), max(float(np.max(m)) for m in values)
    return ColourScale(low, high if high > low else low + 1e-3, label, cmap)


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def colourbar(scale: ColourScale, width: int = 360, ticks: int = 5) -> Image.Image:
    """A horizontal colourbar with tick values and the scale's label, on white; its text grows with ``width``,
    so that it stays at least 12 px high when a 1024 px picture is shown 350 px wide (a phone)."""
    font_size = max(20, round(width / 24))
    pad, bar_height = font_size // 2 + 4, font_size
    font = _font(font_size)
    height = pad + font_size + 6 + bar_height + 4 + font_size + pad
    out = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(out)
    label_size = font_size  # the label shrinks to the bar's width rather than being cut off
    while label_size > 10 and draw.textlength(scale.label, font=_font(label_size)) > width - 2 * pad:
        label_size -= 1
    draw.text((pad, pad + font_size - label_size), scale.label, fill=TEXT_COLOR, font=_font(label_size))
    top = pad + font_size + 6
    ramp = np.linspace(scale.vmin, scale.vmax, width - 2 * pad, dtype=np.float32)[None].repeat(bar_height, axis=0)
    out.paste(scale.colorize(ramp), (pad, top))
    draw.rectangle((pad - 1, top - 1, width - pad, top + bar_height), outline=TEXT_COLOR)
    for i in range(ticks):
        value = scale.vmin + (scale.vmax - scale.vmin) * i / (ticks - 1)
        x = pad + round((width - 2 * pad - 1) * i / (ticks - 1))
        text = f"{value:.2f}"
        text_w = draw.textlength(text, font=font)
        draw.line((x, top + bar_height, x, top + bar_height + 3), fill=TEXT_COLOR)
        draw.text((min(max(x - text_w / 2, 0), width - text_w), top + bar_height + 4), text, fill=TEXT_COLOR, font=font)
    return out


def resized_values(values: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A float map stretched (bilinear) to ``size`` (width, height), as float32."""
    return np.asarray(Image.fromarray(np.asarray(values, dtype=np.float32), mode="F").resize(size, Image.BILINEAR))


def heatmap(values: np.ndarray, size: tuple[int, int], scale: ColourScale, photo: Image.Image | None = None,
            alpha: float = 0.65) -> Image.Image:
    """``values`` (any resolution) stretched to ``size`` and coloured by ``scale``; blended over ``photo`` if given.

    The values are resized before they are coloured, so the cost is that of ``size``,
    not of the map's or the photo's resolution.
    """
    heat = scale.colorize(resized_values(values, size))
    if photo is None:
        return heat
    base = photo.convert("RGB")
    return Image.blend(base.resize(size, Image.BILINEAR) if base.size != size else base, heat, alpha)


def with_colourbar(image: Image.Image, scale: ColourScale) -> Image.Image:
    """``image`` with ``scale``'s colourbar below it, as wide as the image (at least 240 px)."""
    bar = colourbar(scale, width=max(image.width, 240))
    out = Image.new("RGB", (max(image.width, bar.width), image.height + bar.height), BACKGROUND)
    out.paste(image.convert("RGB"), (0, 0))
    out.paste(bar, (0, image.height))
    return out


def overlay_mask(image: Image.Image, mask: np.ndarray, color: tuple[int, int, int] = MASK_COLOR,
                 alpha: float = 0.5) -> Image.Image:
    """``image`` with the boolean ``mask`` (same size) tinted in ``color`` and its outline drawn solid."""
    base = np.asarray(image.convert("RGB"), dtype=np.float32)
    tint = np.array(color, dtype=np.float32)
    out = base.copy()
    out[mask] = (1 - alpha) * base[mask] + alpha * tint
    edge = mask & ~_eroded(mask)
    out[edge] = tint
    return Image.fromarray(out.round().astype(np.uint8))


def _eroded(mask: np.ndarray) -> np.ndarray:
    """The mask shrunk by one pixel (4-neighbourhood), to find its outline."""
    padded = np.pad(mask, 1, constant_values=False)
    return (padded[1:-1, 1:-1] & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:])


def mask_image(mask: np.ndarray) -> Image.Image:
    """A boolean mask as a 0/255 grayscale PNG-ready image."""
    return Image.fromarray(mask.astype(np.uint8) * 255, mode="L")


def resized_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A boolean mask resized (nearest) to ``size`` (width, height)."""
    return np.asarray(mask_image(mask).resize(size, Image.NEAREST)) > 0


# What each pyramid level of the hypercorrelation sees, for labels in the app (deepest first).
LEVEL_NOTES = {4: "deepest: object parts and meaning", 3: "middle: shapes and parts",
               2: "shallowest: edges and texture"}


def display_size(size: tuple[int, int], max_side: int, min_side: int = 0) -> tuple[int, int]:
    """``size`` scaled so its longer side is at most ``max_side`` and, for small images, at least ``min_side``."""
    longest = max(size)
    scale = min(1.0, max_side / longest) if longest > min_side else min_side / longest
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def fit(image: Image.Image, max_side: int, min_side: int = 0) -> Image.Image:
    """``image`` in RGB resized once to ``display_size`` (small ones enlarged smoothly, large ones reduced)."""
    size = display_size(image.size, max_side, min_side)
    rgb = image.convert("RGB")
    if size == image.size:
        return rgb
    return rgb.resize(size, Image.BICUBIC if size[0] > image.width else Image.BILINEAR, reducing_gap=3.0)


def level_title(level: int, count: int | None = None) -> str:
    """A heading for one pyramid level, e.g. ``Level 4 (deepest: object parts and meaning), 3 layers``."""
    note = LEVEL_NOTES.get(level)
    layers = "" if count is None else f", {count} layer{'s' if count != 1 else ''}"
    return f"Level {level}" + (f" ({note})" if note else "") + layers


def layers_mask(layers: Sequence[Image.Image | np.ndarray]) -> np.ndarray | None:
    """The union of brush layers as one (H, W) uint8 alpha map at the first layer's size; None without layers.

    Layers of another size are resized to the first one's. Pass the result to
    ``hsnet.inputs.load_mask``, which thresholds it, checks it fits the image and
    refuses it when nothing was painted.
    """
    union: np.ndarray | None = None
    for layer in layers:
        image = layer if isinstance(layer, Image.Image) else Image.fromarray(np.asarray(layer))
        alpha = image.convert("RGBA").getchannel("A")
        if union is None:
            union = np.asarray(alpha).copy()
        else:
            if alpha.size != (union.shape[1], union.shape[0]):
                alpha = alpha.resize((union.shape[1], union.shape[0]), Image.NEAREST)
            np.maximum(union, np.asarray(alpha), out=union)
    return union


def mark_point(image: Image.Image, x: float, y: float, color: tuple[int, int, int] = MARKER_COLOR) -> Image.Image:
    """A copy of ``image`` with a ring and cross hair at (x, y), sized to the image, outlined to show on any photo."""
    out = image.convert("RGB")
    draw = ImageDraw.Draw(out)
    radius = max(6, round(min(out.size) / 30))
    width = max(2, radius // 3)
    for stroke, colour in ((width + 2, (0, 0, 0)), (width, color)):  # a dark outline under the coloured marker
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), outline=colour, width=stroke)
        for dx, dy in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            draw.line((x + dx * radius, y + dy * radius, x + dx * 2 * radius, y + dy * 2 * radius), fill=colour,
                      width=stroke)
    return out
