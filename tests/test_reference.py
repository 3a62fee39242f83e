"""The model against outputs of the authors' implementation, stored in tests/reference/ (a clean checkout needs
nothing else).

The authors' code was run once on deterministic weights, one per key of their released checkpoints
(``official-keys-<backbone>.tsv``), and deterministic inputs, both rebuilt here from the recipe
below; its outputs are ``expected-<case>.npz``. 1-shot cases compare logits, the 5-shot case the
authors' vote mask.
"""
from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

import hsnet

REFERENCE = Path(__file__).resolve().parent / "reference"
# case: (backbone, batch, shots, image side, seed)
CASES = {
    "resnet50-1shot": ("resnet50", 2, 1, 400, 11),
    "resnet101-1shot": ("resnet101", 1, 1, 320, 12),
    "vgg16-1shot": ("vgg16", 1, 1, 400, 13),
    "resnet50-5shot": ("resnet50", 1, 5, 400, 14),
}


def official_keys(backbone: str) -> list[tuple[str, tuple[int, ...]]]:
    """(key, shape) of every tensor of the authors' checkpoint of ``backbone``."""
    rows = []
    for line in (REFERENCE / f"official-keys-{backbone}.tsv").read_text().splitlines():
        if line and not line.startswith("#"):
            key, shape, _ = line.split("\t")
            rows.append((key, tuple(int(s) for s in shape.strip("()").split(",") if s.strip())))
    return rows


def reference_weights(backbone: str, seed: int) -> dict[str, torch.Tensor]:
    """Well-scaled noise per key, seeded by (seed, crc32 of the key), as the reference run used."""
    out = {}
    for key, shape in official_keys(backbone):
        if key.endswith("num_batches_tracked"):
            out[key] = torch.zeros(shape, dtype=torch.int64)
            continue
        noise = np.random.default_rng([seed, zlib.crc32(key.encode())]).standard_normal(shape)
        if key.endswith("running_mean"):
            value = 0.1 * noise
        elif key.endswith("running_var"):
            value = 1.0 + 0.1 * np.abs(noise)
        elif key.endswith("bias"):
            value = 0.05 * noise
        elif len(shape) == 1:  # a normalisation layer's scale
            value = 1.0 + 0.1 * noise
        else:  # a convolution or linear weight, He-scaled
            value = noise * np.sqrt(2.0 / int(np.prod(shape[1:])))
        out[key] = torch.from_numpy(value.astype(np.float32))
    return out


def reference_inputs(batch: int, shots: int, side: int, seed: int) -> tuple[torch.Tensor, ...]:
    """Blocky noise images (already normalised) and elliptic blob masks, drawn in the reference run's order."""
    rng = np.random.default_rng(seed)

    def images(n: int) -> np.ndarray:
        coarse = rng.standard_normal((n, 3, side // 16 + 1, side // 16 + 1))
        blocks = np.kron(coarse, np.ones((1, 1, 16, 16)))[:, :, :side, :side]
        return (blocks + 0.3 * rng.standard_normal(blocks.shape)).astype(np.float32)

    def masks(n: int) -> np.ndarray:
        yy, xx = np.mgrid[0:side, 0:side] / side
        out = np.zeros((n, side, side), np.float32)
        for i in range(n):
            cy, cx = rng.uniform(0.3, 0.7, 2)
            ry, rx = rng.uniform(0.12, 0.3, 2)
            out[i] = (((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1).astype(np.float32)
        return out

    query = images(batch)
    supports = images(batch * shots).reshape(batch, shots, 3, side, side)
    support_masks = masks(batch * shots).reshape(batch, shots, side, side)
    return tuple(torch.from_numpy(a) for a in (query, supports, support_masks))


SHARED = Path(__file__).resolve().parents[2] / "shared" / "reference"


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/reference is not beside this checkout")
def test_the_copies_are_the_shared_reference_files() -> None:
    copies = sorted(p.name for p in REFERENCE.iterdir())
    assert copies == sorted(p.name for p in SHARED.glob("*") if p.suffix in (".npz", ".tsv"))
    assert all((REFERENCE / name).read_bytes() == (SHARED / name).read_bytes() for name in copies)


@pytest.mark.slow  # about 5-30 s per case on a 2-core CPU
@pytest.mark.parametrize("case", list(CASES))
def test_matches_the_authors_outputs(case: str) -> None:
    backbone, batch, shots, side, seed = CASES[case]
    want = np.load(REFERENCE / f"expected-{case}.npz")["out"]
    model = hsnet.load_weights(hsnet.build_model(backbone), reference_weights(backbone, seed)).eval()
    query, supports, masks = reference_inputs(batch, shots, side, seed)
    with torch.no_grad():
        got = (model(query, supports[:, 0], masks[:, 0]) if shots == 1
               else model.predict_mask(query, supports, masks)).float().numpy()
    assert got.shape == want.shape
    if shots == 1:
        error = float(np.abs(got - want).max()) / max(1.0, float(np.abs(want).max()))
        agreement = float(((got[:, 1] > got[:, 0]) == (want[:, 1] > want[:, 0])).mean())
        assert error <= 1e-3 and agreement >= 0.999, f"max error {error:.2e} of scale, argmax agreement {agreement}"
    else:
        assert float((got == want).mean()) >= 0.999
