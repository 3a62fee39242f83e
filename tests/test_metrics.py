"""IoU, mIoU and FB-IoU against numbers worked out by hand."""
from __future__ import annotations

import pytest
import torch

from hsnet.metrics import IoUMeter, episode_areas

T = torch.tensor
# Three 2x3 episodes. A and B are class 0, C is class 1; B ignores its top-right pixel (a PASCAL boundary).
PRED = T([[[1, 1, 0], [0, 0, 0]], [[1, 1, 1], [0, 0, 0]], [[0, 0, 0], [0, 0, 0]]]).float()
GT = T([[[1, 0, 0], [0, 0, 1]], [[1, 1, 0], [0, 0, 0]], [[0, 1, 1], [0, 0, 0]]]).float()
IGNORE = T([[[0, 0, 0], [0, 0, 0]], [[0, 0, 1], [0, 0, 0]], [[0, 0, 0], [0, 0, 0]]]).bool()
CLASSES = T([0, 0, 1])


def test_episode_areas_by_hand():
    inter, union = episode_areas(PRED, GT, IGNORE)
    # A: fg 1 of 3, bg 3 of 5.  B (5 valid pixels): fg 2 of 2, bg 3 of 3.  C: fg 0 of 2, bg 4 of 6.
    assert inter.tolist() == [[3, 1], [3, 2], [4, 0]]
    assert union.tolist() == [[5, 3], [3, 2], [6, 2]]


def test_ignored_pixels_count_for_nothing():
    inter, union = episode_areas(PRED[1:2], GT[1:2])
    assert (inter.tolist(), union.tolist()) == ([[3, 2]], [[4, 3]])  # without the ignore mask B is worse


def test_miou_fbiou_and_class_iou_by_hand():
    meter = IoUMeter(nclass=4, class_ids=[0, 1])
    meter.update(PRED, GT, CLASSES, IGNORE)
    assert meter.class_iou() == pytest.approx({0: 60.0, 1: 0.0})  # class 0: (1 + 2) / (3 + 2)
    assert meter.miou() == pytest.approx(30.0)
    # foreground 3/7, background (3 + 3 + 4) / (5 + 3 + 6) = 5/7 -> FB-IoU 4/7
    assert meter.fb_iou() == pytest.approx(400 / 7)
    assert meter.episodes == 3


def test_a_class_without_episodes_is_left_out_of_the_miou_and_named():
    meter = IoUMeter(nclass=4, class_ids=[0, 1, 2])
    meter.update(PRED, GT, CLASSES, IGNORE)
    assert meter.miou() == pytest.approx(30.0)  # (60 + 0) / 2, not (60 + 0 + 0) / 3
    assert meter.unscored() == [2]


def test_meters_merge_into_the_same_sums_as_one_meter():
    whole = IoUMeter(4, [0, 1])
    whole.update(PRED, GT, CLASSES, IGNORE)
    whole.add_loss(0.5)
    parts = [IoUMeter(4, [0, 1]) for _ in range(2)]
    parts[0].update(PRED[:1], GT[:1], CLASSES[:1], IGNORE[:1])
    parts[1].update(PRED[1:], GT[1:], CLASSES[1:], IGNORE[1:])
    parts[1].add_loss(0.5)
    merged = parts[0].merge(parts[1])
    assert torch.equal(merged.sums, whole.sums)
    assert (merged.miou(), merged.fb_iou(), merged.mean_loss) == (whole.miou(), whole.fb_iou(), 0.5)
    assert merged.reduced().miou() == whole.miou()  # one process: reduction is the identity
