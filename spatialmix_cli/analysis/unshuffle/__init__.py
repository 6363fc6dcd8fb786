"""Pixel un-shuffling (Sec. 4.4): a fixed permutation of pixel positions, PSNR, scores with baselines,
and the reconstruction grid. Training itself is the shared trainer with ``task: unshuffle``."""

from ...data.permutation import inverse, make_permutation, scramble, unscramble
from ...training.psnr import PSNR_CONVENTION, psnr, psnr_from_mse

__all__ = [
    "PSNR_CONVENTION",
    "inverse",
    "make_permutation",
    "psnr",
    "psnr_from_mse",
    "scramble",
    "unscramble",
]
