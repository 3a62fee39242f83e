"""HSNet: backbone features -> masked hypercorrelation pyramid -> 4D squeeze -> 2D mask logits."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .backbone import BACKBONES
from .correlation import stack_level
from .learner import HPNLearner
from .ops import FORMULAS, Ops

DEFAULT_IMAGE_SIDE = 400  # the authors' training and evaluation side
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class FeaturePyramid:
    """Normalized features grouped by level, deepest first: each (N, L, C, H, W)."""

    levels: list[torch.Tensor]

    def to(self, device: torch.device | str) -> "FeaturePyramid":
        """The same features on ``device``."""
        return FeaturePyramid([x.to(device) for x in self.levels])

    @staticmethod
    def cat(pyramids: list["FeaturePyramid"]) -> "FeaturePyramid":
        """The items of several pyramids in one (one pyramid is returned as it is)."""
        if len(pyramids) == 1:
            return pyramids[0]
        return FeaturePyramid([_cat_items(list(levels)) for levels in zip(*(p.levels for p in pyramids))])

    def select(self, index: slice | torch.Tensor) -> "FeaturePyramid":
        """Items ``index`` of every level."""
        return FeaturePyramid([x[index] for x in self.levels])

    @property
    def nbytes(self) -> int:
        """Bytes the features take."""
        return sum(x.numel() * x.element_size() for x in self.levels)


def _cat_items(parts: list[torch.Tensor]) -> torch.Tensor:
    """``torch.cat(parts)`` laid out in memory as the parts are (levels are (N, H, W, L, C) in memory): a plain
    copy, where ``torch.cat`` takes a strided path about 3x slower on the CPU."""
    first = parts[0]
    order = (0, *sorted(range(1, first.dim()), key=lambda d: -first.stride(d)))
    inverse = tuple(sorted(range(first.dim()), key=order.__getitem__))
    return torch.cat([part.permute(order) for part in parts]).permute(inverse)


class HSNet(nn.Module):
    """The authors' HSNet: its parameters (``backbone`` and ``hpn_learner`` carry their checkpoint's names) and
    the steps of its forward pass, each computed with an ``Ops`` (default: the formulas).

    ``mask_support=False`` is the authors' variant without support feature masking
    (Table 1, dagger); ``image_size`` is the square side the weights were trained at.
    Episodes (bounded passes, precision, fast kernels) are run by ``hsnet.runtime``.
    """

    def __init__(self, backbone: str = "resnet50", *, mask_support: bool = True,
                 image_size: int = DEFAULT_IMAGE_SIDE, pretrained_backbone: bool = False):
        super().__init__()
        if backbone not in BACKBONES:
            raise ValueError(f"unknown backbone {backbone!r}; choose one of {', '.join(BACKBONES)}")
        self.spec = BACKBONES[backbone]
        self.mask_support = mask_support
        self.image_size = image_size
        self.backbone = self.spec.build(pretrained_backbone)
        self.hpn_learner = HPNLearner(self.spec.level_sizes)
        self.register_buffer("pixel_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    @property
    def backbone_name(self) -> str:
        return self.spec.name

    def train(self, mode: bool = True) -> "HSNet":
        """Train the learner only: the backbone stays frozen with BatchNorm on running statistics."""
        super().train(mode)
        self.backbone.eval()
        return self

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) uint8 RGB -> the normalized float input the backbone was trained on."""
        return (images.to(self.pixel_mean.device, torch.float32) / 255 - self.pixel_mean) / self.pixel_std

    def _pyramids(self, taps: list[torch.Tensor],
                  groups: list[tuple[slice, torch.Tensor | None]]) -> list[FeaturePyramid]:
        """One normalized pyramid per (items, masks) group of the batch the backbone's taps hold, each in storage
        of its own; a group's (n, H, W) masks, resized to each level, multiply its taps first (when
        ``mask_support`` is on). ``taps`` is consumed: a level's taps are let go once it is stacked, the largest
        level first, so the peak holds one level's stacked copy beside the taps."""
        n4, n3, n2 = self.spec.level_sizes
        total = n4 + n3 + n2
        built: list[list[torch.Tensor]] = [[] for _ in groups]
        for start, stop in ((0, n2), (n2, total - n4), (total - n4, total)):
            level_taps = taps[start:stop]
            taps[start:stop] = [None] * (stop - start)
            for (items, masks), levels in zip(groups, built):
                mask = masks.unsqueeze(1) if masks is not None and self.mask_support else None
                levels.append(stack_level([t[items] for t in level_taps], mask))
            del level_taps
        return [FeaturePyramid(levels[::-1]) for levels in built]

    def backbone_features(self, images: torch.Tensor, ops: Ops = FORMULAS) -> list[torch.Tensor]:
        """The backbone's tapped features; it runs channels-last (NHWC), faster on the CPU."""
        return self.spec.extract(self.backbone, images.contiguous(memory_format=torch.channels_last), ops.conv_bn)

    def query_features(self, images: torch.Tensor, ops: Ops = FORMULAS) -> FeaturePyramid:
        """Normalized query features of (B, 3, H, W) images."""
        return self._pyramids(self.backbone_features(images, ops), [(slice(None), None)])[0]

    def support_features(self, images: torch.Tensor, masks: torch.Tensor, ops: Ops = FORMULAS) -> FeaturePyramid:
        """Normalized features of (N, 3, H, W) support images, each masked by its (N, H, W) mask."""
        return self._pyramids(self.backbone_features(images, ops), [(slice(None), masks)])[0]

    def episode_features(self, query: torch.Tensor, supports: torch.Tensor, masks: torch.Tensor,
                         ops: Ops = FORMULAS) -> tuple[FeaturePyramid, FeaturePyramid]:
        """Query (B, 3, H, W) and masked support (N, 3, H, W) pyramids, the images in one backbone
        batch when they share a size (less backbone time than two batches)."""
        if query.shape[-2:] != supports.shape[-2:]:
            return self.query_features(query, ops), self.support_features(supports, masks, ops)
        b = query.shape[0]
        taps = self.backbone_features(torch.cat([query, supports]), ops)
        query_pyramid, support_pyramid = self._pyramids(taps, [(slice(0, b), None), (slice(b, None), masks)])
        return query_pyramid, support_pyramid

    def hypercorrelation(self, query: FeaturePyramid, support: FeaturePyramid, shots: int = 1,
                         ops: Ops = FORMULAS) -> list[torch.Tensor]:
        """The three (B*K, L, Hq, Wq, Hs, Ws) correlation levels; support holds B*K items (K per query) or K
        items that every query shares."""
        return [ops.correlate(q, s.reshape(-1, shots, *s.shape[1:])) for q, s in zip(query.levels, support.levels)]

    def decode(self, corr: list[torch.Tensor], shots: int, output_size: tuple[int, int],
               ops: Ops = FORMULAS) -> torch.Tensor:
        """Logits (B, K, 2, h, w) from the hypercorrelation pyramid, resized to ``output_size``."""
        logits = self.hpn_learner(*corr, conv4d=ops.conv4d)
        logits = F.interpolate(logits, output_size, mode="bilinear", align_corners=True)
        return logits.view(-1, shots, *logits.shape[1:])
