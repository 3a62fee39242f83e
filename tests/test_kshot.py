"""The authors' k-shot vote, and batched supports equal K separate 1-shot passes."""
from __future__ import annotations

import pytest
import torch

from hsnet.model.vote import authors_vote, combine_shots, foreground_score


def test_vote_rule_on_hand_made_votes() -> None:
    votes = torch.tensor([[[0, 1, 2], [3, 3, 1]], [[0, 0, 0], [0, 0, 0]], [[1, 0, 0], [0, 0, 0]]])
    expected = torch.tensor([[[0, 0, 1], [1, 1, 0]], [[0, 0, 0], [0, 0, 0]], [[1, 0, 0], [0, 0, 0]]]).float()
    # image 0: peak 3, so 2/3 and 3/3 pass 0.5 and 1/3 does not; image 1: no votes; image 2: peak 1.
    assert torch.equal(authors_vote(votes), expected)


def test_vote_threshold_is_inclusive() -> None:
    assert torch.equal(authors_vote(torch.tensor([[[1, 2, 4]]])), torch.tensor([[[0.0, 1.0, 1.0]]]))


def logits_for(masks: torch.Tensor) -> torch.Tensor:
    """Logits whose argmax is the given (B, K, h, w) masks."""
    fg = masks.float() * 2 - 1
    return torch.stack([-fg, fg], dim=2)


def test_combine_shots_one_shot_is_argmax() -> None:
    masks = torch.randint(0, 2, (2, 1, 4, 5))
    assert torch.equal(combine_shots(logits_for(masks)), masks[:, 0].float())


def test_combine_shots_votes_across_shots() -> None:
    masks = torch.tensor([[[[1, 1, 0]], [[1, 0, 0]], [[1, 0, 1]]]])  # (B=1, K=3, 1, 3)
    assert torch.equal(combine_shots(logits_for(masks)), torch.tensor([[[1.0, 0.0, 0.0]]]))
    assert torch.equal(combine_shots(logits_for(masks), "mean-prob"), torch.tensor([[[1.0, 0.0, 0.0]]]))
    with pytest.raises(ValueError, match="k-shot rule"):
        combine_shots(logits_for(masks), "median")


def test_batched_supports_equal_separate_passes(resnet50) -> None:
    torch.manual_seed(3)
    size, shots = 96, 3
    query = torch.randn(2, 3, size, size)
    supports = torch.randn(2, shots, 3, size, size)
    masks = (torch.rand(2, shots, size, size) > 0.5).float()
    with torch.no_grad():
        batched = resnet50.shot_logits(query, supports, masks)
        separate = torch.stack([resnet50(query, supports[:, k], masks[:, k]) for k in range(shots)], dim=1)
    torch.testing.assert_close(batched, separate, rtol=1e-4, atol=1e-4)
    votes = separate.argmax(dim=2).sum(dim=1)
    assert torch.equal(resnet50.predict_mask(query, supports, masks), authors_vote(votes))


@pytest.mark.parametrize("height,width", [(96, 160), (160, 96), (100, 133)])
def test_non_square_inputs(resnet50, height: int, width: int) -> None:
    torch.manual_seed(4)
    query, support = torch.randn(1, 3, height, width), torch.randn(1, 3, height, width)
    mask = torch.ones(1, height, width)
    with torch.no_grad():
        logits = resnet50(query, support, mask)
        mask_out = resnet50.predict_mask(query, support[:, None], mask[:, None], output_size=(37, 53))
    assert logits.shape == (1, 2, height, width)
    assert mask_out.shape == (1, 37, 53)


@pytest.mark.parametrize("shots", [1, 2, 5])
@pytest.mark.parametrize("rule", ["vote", "mean-prob"])
def test_foreground_score_cut_at_half_is_the_rule(shots: int, rule: str) -> None:
    """The Predictor resizes this score and cuts it at 0.5: at model resolution that is exactly the rule's mask."""
    torch.manual_seed(shots)
    logits = torch.randn(3, shots, 2, 6, 7)
    score = foreground_score(logits, rule)
    assert score.shape == (3, 6, 7) and 0 <= score.min() and score.max() <= 1
    assert torch.equal((score >= 0.5).float(), combine_shots(logits, rule))
    if shots == 1 and rule == "vote":
        assert torch.equal(score >= 0.5, logits[:, 0].argmax(dim=1).bool())
