"""HSNet with its tensor API: ``model(query, support, mask)`` and ``predict_mask`` run the runtime's one path.

Without gradients (``torch.no_grad``/``inference_mode``) they run as the Predictor runs:
bounded passes, the CPU kernels, fp32 on the tensors' device (``episode_logits``). With
gradients (training) the same passes run the formulas under the caller's autocast.
"""
from __future__ import annotations

import torch

from ..model import DEFAULT_IMAGE_SIDE, FORMULAS, HSNet, KShotRule, combine_shots
from .context import InferenceContext
from .episode import episode_logits, run_passes


class HSNetModel(HSNet):
    """What ``hsnet.build_model`` and ``hsnet.from_pretrained`` give: the network and its tensor API."""

    def forward(self, query: torch.Tensor, support: torch.Tensor, support_mask: torch.Tensor) -> torch.Tensor:
        """(B,3,H,W), (B,3,H,W), (B,H,W) normalized -> 2-channel logits (B,2,H,W) at the support image's size."""
        return self.shot_logits(query, support[:, None], support_mask[:, None], tuple(support.shape[-2:]))[:, 0]

    def shot_logits(self, query: torch.Tensor, supports: torch.Tensor, support_masks: torch.Tensor,
                    output_size: tuple[int, int] | None = None) -> torch.Tensor:
        """Logits (B, K, 2, h, w) of each of the K supports (default size: the supports')."""
        size = output_size or tuple(supports.shape[-2:])
        if not torch.is_grad_enabled():
            context = InferenceContext.create(query.device, "fp32")
            return episode_logits(self, context, query, supports, support_masks, size)
        q, s = self.episode_features(query, supports.flatten(0, 1), support_masks.flatten(0, 1))
        budget = InferenceContext(query.device).pass_bytes
        return run_passes(self, FORMULAS, q, s, supports.shape[1], size, budget).logits

    def predict_mask(self, query: torch.Tensor, supports: torch.Tensor, support_masks: torch.Tensor,
                     output_size: tuple[int, int] | None = None, rule: KShotRule = "vote") -> torch.Tensor:
        """(B,3,H,W), (B,K,3,H,W), (B,K,H,W) -> (B,h,w) mask in {0, 1} (float).

        ``output_size`` is the authors' original-size mode; ``rule`` picks the k-shot rule
        ("vote" is the authors' and the default).
        """
        with torch.no_grad():
            return combine_shots(self.shot_logits(query, supports, support_masks, output_size), rule)


def build_model(backbone: str = "resnet50", pretrained_backbone: bool = False, *, mask_support: bool = True,
                image_size: int = DEFAULT_IMAGE_SIDE) -> HSNetModel:
    """An HSNet with the given backbone; ImageNet V1 backbone weights only when asked (downloads)."""
    return HSNetModel(backbone, mask_support=mask_support, image_size=image_size,
                      pretrained_backbone=pretrained_backbone)
