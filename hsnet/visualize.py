"""Pictures of predictions: mask overlays, correlation heatmaps over an image, and labelled grids of them."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
from matplotlib import colormaps
from PIL import Image, ImageDraw, ImageFont

MASK_COLOR = (255, 64, 64)


class LayerMapLike(Protocol):
    """A named map of one backbone layer (``hsnet.predictor.LayerMap`` is one)."""

    name: str
    level: int
    values: np.ndarray


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


def colorize(values: np.ndarray, cmap: str = "inferno", vmin: float = 0.0, vmax: float = 1.0) -> Image.Image:
    """A float map as an RGB picture through a matplotlib colormap."""
    scaled = np.clip((values - vmin) / max(vmax - vmin, 1e-8), 0, 1)
    rgb = colormaps[cmap](scaled)[..., :3]
    return Image.fromarray((rgb * 255).round().astype(np.uint8))


def heatmap_over(image: Image.Image, values: np.ndarray, alpha: float = 0.6, cmap: str = "inferno") -> Image.Image:
    """A correlation map (any resolution, values in [0, 1]) stretched over ``image`` and blended."""
    heat = colorize(values, cmap).resize(image.size, Image.BILINEAR)
    return Image.blend(image.convert("RGB"), heat, alpha)


def mask_image(mask: np.ndarray) -> Image.Image:
    """A boolean mask as a 0/255 grayscale PNG-ready image."""
    return Image.fromarray(mask.astype(np.uint8) * 255, mode="L")


# What each pyramid level of the hypercorrelation sees, for labels in the app (deepest first).
LEVEL_NOTES = {4: "deepest: object parts and semantics", 3: "middle: shapes and parts", 2: "shallowest: edges and texture"}
GRID_BACKGROUND = (255, 255, 255)
GRID_TEXT = (33, 37, 41)


def fit(image: Image.Image, max_side: int) -> Image.Image:
    """A copy of ``image`` scaled down (never up) so that its longer side is at most ``max_side``."""
    scale = min(1.0, max_side / max(image.size))
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.convert("RGB").resize(size, Image.BILINEAR) if size != image.size else image.convert("RGB")


def level_title(level: int, count: int | None = None) -> str:
    """A heading for one pyramid level, e.g. ``Level 4 (deepest: object parts and semantics), 3 layers``."""
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


def mark_point(image: Image.Image, x: float, y: float, color: tuple[int, int, int] = (0, 200, 255)) -> Image.Image:
    """A copy of ``image`` with a ring and cross hair at (x, y), sized to the image, to show a clicked point."""
    out = image.convert("RGB")
    draw = ImageDraw.Draw(out)
    radius = max(4, round(min(out.size) / 40))
    width = max(2, radius // 3)
    draw.ellipse((x - radius, y - radius, x + radius, y + radius), outline=color, width=width)
    draw.line((x - 2 * radius, y, x - radius, y), fill=color, width=width)
    draw.line((x + radius, y, x + 2 * radius, y), fill=color, width=width)
    draw.line((x, y - 2 * radius, x, y - radius), fill=color, width=width)
    draw.line((x, y + radius, x, y + 2 * radius), fill=color, width=width)
    return out


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def layer_grid(image: Image.Image, layer_maps: Sequence[LayerMapLike], title: str | None = None, tile: int = 150,
               columns: int = 6, cmap: str = "inferno") -> Image.Image:
    """One picture of per-layer maps over ``image``: a titled section per pyramid level, each map labelled.

    ``layer_maps`` are objects with ``name``, ``level`` and ``values`` (like
    ``hsnet.predictor.LayerMap``), in the order to draw; values in [0, 1] at any
    resolution. Sections wrap after ``columns`` maps.
    """
    small = fit(image, tile)
    levels: dict[int, list[LayerMapLike]] = {}
    for layer in layer_maps:
        levels.setdefault(layer.level, []).append(layer)
    pad, label_h, heading_h = 8, 20, 26
    title_h = 30 if title else 0
    cell_w, cell_h = small.width + pad, small.height + label_h
    ncols = max(1, min(columns, max((len(v) for v in levels.values()), default=1)))
    rows = [(level, maps[i:i + ncols]) for level, maps in levels.items() for i in range(0, len(maps), ncols)]
    height = title_h + pad + sum(cell_h for _ in rows) + heading_h * len(levels) + pad
    width = max(pad + ncols * cell_w, 360)
    out = Image.new("RGB", (width, height), GRID_BACKGROUND)
    draw = ImageDraw.Draw(out)
    y = pad
    if title:
        draw.text((pad, y), title, fill=GRID_TEXT, font=_font(18))
        y += title_h
    seen: set[int] = set()
    for level, row in rows:
        if level not in seen:
            seen.add(level)
            draw.text((pad, y + 4), level_title(level, len(levels[level])), fill=GRID_TEXT, font=_font(15))
            y += heading_h
        for col, layer in enumerate(row):
            x = pad + col * cell_w
            out.paste(heatmap_over(small, layer.values, cmap=cmap), (x, y))
            draw.text((x, y + small.height + 2), layer.name, fill=GRID_TEXT, font=_font(13))
        y += cell_h
    return out
