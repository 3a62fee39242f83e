"""The authors' preprocessing: square bilinear resize + ImageNet normalization; nearest resize for masks."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

from ..model.hsnet import IMAGENET_MEAN, IMAGENET_STD


def image_to_tensor(image: Image.Image, size: int) -> torch.Tensor:
    """(3, size, size) float tensor: PIL bilinear resize, [0, 1] scaling, ImageNet normalization."""
    image = TF.resize(image.convert("RGB"), [size, size], interpolation=InterpolationMode.BILINEAR)
    return TF.normalize(TF.to_tensor(image), IMAGENET_MEAN, IMAGENET_STD)


def resize_mask(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """An (H, W) label or binary mask resized with torch's nearest neighbour, as float (the authors' way)."""
    if tuple(mask.shape) == tuple(size):
        return mask.float()
    return F.interpolate(mask[None, None].float(), size, mode="nearest")[0, 0]
