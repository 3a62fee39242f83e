"""The fast paths (hsnet.runtime's CPU kernels, bounded passes) compute the same values as the plain formulas."""
from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import hsnet
from hsnet.model import FORMULAS
from hsnet.model.backbone import unfolded
from hsnet.model.conv4d import CenterPivotConv4d, dense_support_weight
from hsnet.model.correlation import stack_level
from hsnet.runtime import InferenceContext, encode, episode_logits, pick_ops, run_episode, run_passes
from hsnet.runtime.cpu.correlation import correlate
from hsnet.runtime.passes import pair_bytes, pair_passes

CPU = torch.device("cpu")


def plain_center_pivot(layer: CenterPivotConv4d, x: torch.Tensor) -> torch.Tensor:
    """The spec's formula: conv1 over (Hq, Wq) at the strided support pivots + conv2 over (Hs, Ws), via permutes."""
    b, c, hq, wq, hs, ws = x.shape
    s = layer.support_stride
    pivots = x[..., ::s, ::s]
    hs2, ws2 = pivots.shape[-2:]
    q = layer.conv1(pivots.permute(0, 4, 5, 1, 2, 3).reshape(-1, c, hq, wq))
    q = q.view(b, hs2, ws2, -1, hq, wq).permute(0, 3, 4, 5, 1, 2)
    sup = layer.conv2(x.permute(0, 2, 3, 1, 4, 5).reshape(-1, c, hs, ws))
    sup = sup.view(b, hq, wq, -1, hs2, ws2).permute(0, 3, 1, 2, 4, 5)
    return q + sup


@pytest.mark.parametrize("kernel,stride,support", [
    (3, 1, (2, 2)),  # the mixing blocks: dense matrix product
    (3, 2, (3, 2)),  # dense, strided, non-square
    (5, 4, (4, 5)),  # dense with a 5x5 kernel
    (3, 1, (1, 3)),  # dense on a one-row map
    (3, 2, (4, 4)),  # 3D-conv path (16 > 9 positions)
    (5, 4, (7, 6)),  # 3D-conv path, strided
])
def test_center_pivot_fast_paths_equal_plain_formula(kernel: int, stride: int, support: tuple[int, int]) -> None:
    torch.manual_seed(kernel + stride + support[0])
    layer = CenterPivotConv4d(3, 5, kernel, stride).double()
    x = torch.randn(2, 3, 4, 5, *support, dtype=torch.float64)
    torch.testing.assert_close(layer(x), plain_center_pivot(layer, x), rtol=1e-10, atol=1e-10)


def test_dense_support_weight_is_the_conv_matrix() -> None:
    torch.manual_seed(0)
    weight = torch.randn(4, 3, 3, 3, dtype=torch.float64)
    maps = torch.randn(6, 3, 3, 2, dtype=torch.float64)
    expected = F.conv2d(maps, weight, stride=2, padding=1)
    got = maps.flatten(1) @ dense_support_weight(weight, (3, 2), 2).t()
    torch.testing.assert_close(got.view(expected.shape), expected)


def test_center_pivot_fast_paths_train() -> None:
    """Gradients through both support-conv paths equal those of the plain formula."""
    torch.manual_seed(1)
    for support in ((2, 2), (5, 4)):
        layer = CenterPivotConv4d(2, 3, 3, 1).double()
        x = torch.randn(1, 2, 3, 3, *support, dtype=torch.float64, requires_grad=True)
        grads = torch.autograd.grad(layer(x).square().sum(), [x, *layer.parameters()])
        expected = torch.autograd.grad(plain_center_pivot(layer, x).square().sum(), [x, *layer.parameters()])
        for got, want in zip(grads, expected):
            torch.testing.assert_close(got, want)


def plain_correlation(query: torch.Tensor, support: torch.Tensor) -> torch.Tensor:
    """Every query position against every support position, per layer, clamped at 0."""
    corr = torch.einsum("blcq,bklcs->bklqs", query.flatten(3), support.flatten(4)).clamp(min=0)
    b, k, n_layers = corr.shape[:3]
    return corr.reshape(b * k, n_layers, *query.shape[-2:], *support.shape[-2:])


def test_sparse_correlation_equals_dense() -> None:
    """Supports whose mask keeps few positions take the sparse path; a full one the dense path."""
    torch.manual_seed(2)
    query = stack_level([torch.randn(2, 8, 5, 6) for _ in range(3)])
    support = stack_level([torch.randn(6, 8, 7, 4) for _ in range(3)]).view(2, 3, 3, 8, 7, 4)
    keep = torch.zeros(2, 3, 7, 4)
    keep[0, 0, 2:4, 1:3] = 1  # 4 of 28 positions: sparse
    keep[0, 1, 1:6, :] = 1  # 20 of 28: dense
    keep[1, 0] = 1  # full: dense
    keep[1, 2, 6, 3] = 1  # one position: sparse; [0, 2] and [1, 1] keep nothing: sparse
    support = support * keep[:, :, None, None]
    torch.testing.assert_close(correlate(query, support), plain_correlation(query, support))
    assert correlate(query, support).view(2, 3, 3, 5, 6, 7, 4)[0, 2].abs().max() == 0


def test_sparse_correlation_under_cpu_autocast() -> None:
    torch.manual_seed(3)
    query = stack_level([torch.randn(1, 8, 4, 4)])
    support = stack_level([torch.randn(2, 8, 4, 4)]).view(1, 2, 1, 8, 4, 4)
    support[:, 0, ..., 1:, :] = 0  # first support sparse, second dense
    with torch.autocast("cpu", torch.bfloat16):
        got = correlate(query, support)
    assert got.dtype == torch.bfloat16
    torch.testing.assert_close(got.float(), plain_correlation(query, support), rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("backbone", ["resnet50", "vgg16"])
def test_channels_last_backbone_equals_plain(backbone: str, request: pytest.FixtureRequest) -> None:
    model = request.getfixturevalue(backbone)
    images = torch.randn(2, 3, 96, 80)
    with torch.inference_mode():
        fast = model.backbone_features(images, pick_ops(model, CPU))
        plain = model.spec.extract(model.backbone, images.contiguous(), unfolded)
    for got, want in zip(fast, plain, strict=True):
        assert (got - want).abs().max() <= 1e-5 * want.abs().max()  # fp32 rounding of another summation order


def episode_inputs(side: int = 64, shots: int = 2) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(4)
    masks = torch.zeros(1, shots, side, side)
    masks[..., side // 4: side // 2, side // 3:] = 1
    return torch.randn(1, 3, side, side), torch.randn(1, shots, 3, side, side), masks


def formula_logits(model: hsnet.HSNet, query: torch.Tensor, supports: torch.Tensor,
                   masks: torch.Tensor) -> torch.Tensor:
    """The model's formulas in one pass, no runtime: (B, K, 2, H, W)."""
    with torch.no_grad():
        q, s = model.episode_features(query, supports.flatten(0, 1), masks.flatten(0, 1))
        return model.decode(model.hypercorrelation(q, s, supports.shape[1]), supports.shape[1], query.shape[-2:])


def test_context_episodes_fp32_are_the_model(resnet50: hsnet.HSNet) -> None:
    query, supports, masks = episode_inputs()
    context = InferenceContext.create("cpu")
    expected = formula_logits(resnet50, query, supports, masks)
    torch.testing.assert_close(episode_logits(resnet50, context, query, supports, masks), expected)
    cached, _ = encode(resnet50, context, supports.flatten(0, 1), masks.flatten(0, 1))
    query_features, precision = encode(resnet50, context, query)
    episode = run_episode(resnet50, context, query_features, cached, 2, (64, 64))
    torch.testing.assert_close(episode.logits, expected)
    assert precision == episode.precision == "fp32"


def test_context_bf16_autocast_on_cpu(resnet50: hsnet.HSNet) -> None:
    query, supports, masks = episode_inputs()
    logits = episode_logits(resnet50, InferenceContext.create("cpu", "bf16"), query, supports, masks)
    assert logits.dtype == torch.float32 and logits.shape == (1, 2, 2, 64, 64)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("options", [{"precision": "fp16"}, {"cuda_graphs": True}, {"precision": "int8"}])
def test_context_refuses_what_the_cpu_cannot_run(options: dict) -> None:
    with pytest.raises(hsnet.InputError):
        InferenceContext.create("cpu", **options)


def test_retained_memory_is_reused_without_page_faults() -> None:
    """After retain_freed_memory, freed 200 MB tensors' pages serve the next ones (in a fresh process)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        pytest.skip("glibc only")
    script = (
        "import resource, torch\n"
        "from hsnet.runtime import retain_freed_memory\n"
        "def faults(cycles):\n"
        "    counts = [resource.getrusage(resource.RUSAGE_SELF).ru_minflt]\n"
        "    for _ in range(cycles):\n"
        "        torch.empty(50_000_000).fill_(1)\n"
        "        counts.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt)\n"
        "    return [b - a for a, b in zip(counts, counts[1:])]\n"
        "before = faults(3)\n"
        "assert retain_freed_memory()\n"
        "print(min(before), faults(6)[-1])\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parent.parent)
    before, after = map(int, done.stdout.split())
    assert before > 40_000 and after < 1_000  # 200 MB is ~49,000 pages of 4 KiB


@pytest.mark.parametrize("batch,shots,per_pass", [(3, 2, 1), (3, 2, 3), (2, 5, 2), (4, 1, 3), (2, 3, 100)])
def test_pair_passes_cover_every_pair_once(batch: int, shots: int, per_pass: int) -> None:
    seen = [(q, k) for queries, shot_range in pair_passes(batch, shots, per_pass)
            for q in range(batch)[queries] for k in range(shots)[shot_range]]
    assert sorted(seen) == [(q, k) for q in range(batch) for k in range(shots)]
    assert all(len(range(batch)[q]) * len(range(shots)[s]) <= max(1, per_pass)
               for q, s in pair_passes(batch, shots, per_pass))


@pytest.mark.parametrize("shared", [False, True])
def test_passes_give_the_one_pass_logits(resnet50: hsnet.HSNet, shared: bool) -> None:
    """Pairs split into passes (one pair, part of a query's shots, several queries) equal a single pass, for
    supports of their own per query and for supports every query shares."""
    torch.manual_seed(5)
    query, supports, masks = torch.randn(2, 3, 64, 64), torch.randn(2, 3, 3, 64, 64), torch.ones(2, 3, 64, 64)
    with torch.no_grad():
        q = resnet50.query_features(query)
        s = resnet50.support_features(supports[0] if shared else supports.flatten(0, 1), masks[0] if shared
                                      else masks.flatten(0, 1))
        one_pass = resnet50.decode(resnet50.hypercorrelation(q, s, 3), 3, (64, 64))
        pair = pair_bytes(q.levels, s.levels)
        for per_pass in (1, 2, 4, 6):
            got = run_passes(resnet50, FORMULAS, q, s, 3, (64, 64), per_pass * pair).logits
            torch.testing.assert_close(got, one_pass)


def assert_close_to_scale(got: list[torch.Tensor], want: list[torch.Tensor]) -> None:
    """Equal up to float rounding relative to each feature's largest value (random weights make large features)."""
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert float((g - w).abs().max()) <= 1e-5 * float(w.abs().max())


def test_folded_batchnorm_equals_the_modules_and_follows_reloaded_weights() -> None:
    def with_batchnorm_statistics(seed: int) -> hsnet.HSNet:
        torch.manual_seed(seed)
        model = hsnet.build_model("resnet50").eval()
        for bn in (m for m in model.backbone.modules() if isinstance(m, torch.nn.BatchNorm2d)):
            bn.running_mean.uniform_(-0.2, 0.2), bn.running_var.uniform_(0.5, 1.5), bn.weight.data.uniform_(0.5, 1.5)
        return model

    model = with_batchnorm_statistics(3)
    ops = pick_ops(model, CPU)
    images = torch.randn(2, 3, 64, 80)
    extract = model.spec.extract
    with torch.inference_mode():
        folded = model.backbone_features(images, ops)
        assert len(folded) == 13
        assert_close_to_scale(folded, extract(model.backbone, images, unfolded))
        hsnet.load_weights(model, with_batchnorm_statistics(4).state_dict())  # in place: the fold must follow
        assert_close_to_scale(model.backbone_features(images, ops), extract(model.backbone, images, unfolded))
    model.double()  # new storage: refolded in the new dtype
    with torch.inference_mode():
        assert_close_to_scale(model.backbone_features(images.double(), ops),
                              extract(model.backbone, images.double(), unfolded))
        model.float()  # parameters made in inference mode carry no version: run unfolded, still right
        assert_close_to_scale(model.backbone_features(images, ops), extract(model.backbone, images, unfolded))


def test_query_and_supports_in_one_backbone_batch_equal_separate_batches(resnet50) -> None:
    torch.manual_seed(4)
    query, supports = torch.randn(2, 3, 96, 96), torch.randn(6, 3, 96, 96)
    masks = (torch.rand(6, 96, 96) > 0.5).float()
    q, s = resnet50.episode_features(query, supports, masks)
    for got, want in ((q, resnet50.query_features(query)), (s, resnet50.support_features(supports, masks))):
        for a, b in zip(got.levels, want.levels):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_the_tensor_api_runs_the_runtime_path(resnet50: hsnet.HSNet, monkeypatch: pytest.MonkeyPatch) -> None:
    """model(...) and predict_mask are thin wrappers of hsnet.runtime's one path: the CPU kernels without
    gradients, the formulas (autograd) with them; both equal the plain formulas."""
    import hsnet.runtime.episode as episode
    import hsnet.runtime.network as network

    seen: list[bool] = []

    def spying(model, ops, *args, **kwargs):
        seen.append(ops is FORMULAS)
        return run_passes(model, ops, *args, **kwargs)

    monkeypatch.setattr(episode, "run_passes", spying)
    monkeypatch.setattr(network, "run_passes", spying)
    query, supports, masks = episode_inputs(side=64, shots=1)
    expected = formula_logits(resnet50, query, supports, masks)[:, 0]
    with torch.no_grad():
        torch.testing.assert_close(resnet50(query, supports[:, 0], masks[:, 0]), expected)
        resnet50.predict_mask(query, supports, masks)
    assert seen == [False, False]  # the CPU kernels
    trained = resnet50(query, supports[:, 0], masks[:, 0])
    torch.testing.assert_close(trained.detach(), expected, rtol=1e-4, atol=1e-4)
    assert seen[-1] is True and trained.requires_grad  # the formulas, differentiable for training
