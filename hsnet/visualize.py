"""Pictures of predictions: mask overlays and correlation heatmaps over an image."""
from __future__ import annotations

import numpy as np
from matplotlib import colormaps
from PIL import Image

MASK_COLOR = (255, 64, 64)


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
