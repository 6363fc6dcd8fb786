"""Peak signal-to-noise ratio for images in [0, 1] (peak 1): PSNR = 10·log10(1 / MSE) dB.

The test-set PSNR is that of the mean squared error over every pixel of every test image (one MSE for
the whole set, not a mean of per-image PSNRs), with the model's output clamped to [0, 1] first, since an
image is; identical images give ``inf``. Every PSNR spatialmix reports says so in its ``psnr_convention``.
"""

from __future__ import annotations

import math

import torch

PSNR_CONVENTION = "dataset-level 10·log10(1/MSE), outputs clamped to [0, 1]"


def psnr_from_mse(mse: float) -> float:
    """PSNR in dB of a mean squared error (``inf`` for 0; negative MSE is an error)."""
    if mse < 0 or math.isnan(mse):
        raise ValueError(f"mean squared error must be >= 0, got {mse}")
    return math.inf if mse == 0 else 10.0 * math.log10(1.0 / mse)


def psnr(prediction: torch.Tensor, target: torch.Tensor) -> float:
    """PSNR of ``prediction`` (clamped to [0, 1]) against ``target`` (same shape, [0, 1]) over all pixels."""
    if prediction.shape != target.shape:
        raise ValueError(f"shapes differ: {tuple(prediction.shape)} vs {tuple(target.shape)}")
    return psnr_from_mse(float(torch.mean((prediction.double().clamp(0, 1) - target.double()) ** 2)))
