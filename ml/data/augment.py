"""Random image augmentation of training batches, as tensor operations.

An :class:`Augmenter` transforms a float batch ``(N, C, H, W)`` in [0, 1] on whatever device it is
on, so on a GPU the augmentation runs there too. It is applied to training batches only:
validation and test images are never changed. No PIL and no torchvision: rotation and random
crop are one affine warp per sample (:func:`affine_grid` + :func:`torch.nn.functional.grid_sample`,
bilinear, mirrored padding), flips are folded into that warp or, without one, copy the flipped
samples back by index, and the colour jitter is one linear blend per image.

Random parameters come from the augmenter's own CPU :class:`torch.Generator`, so a seed gives
the same augmentation on CPU and GPU and does not disturb the training's other random streams.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import DataError
from .settings import settings_from_dict

#: Pixels the warp needs from outside the image (the corners of a rotated image) are mirrored
#: from inside it. Zeros would add black corners and "border" would smear the edge pixels into
#: streaks; both are artefacts a model can learn. Reflection looks like more of the scene.
PADDING_MODE = "reflection"
#: ITU-R BT.601 luma weights, the usual RGB -> gray conversion.
_LUMA = (0.299, 0.587, 0.114)
#: Columns of the per-sample uniform draws: all are drawn on every call, so the random stream
#: does not depend on which augmentations are on.
_HFLIP, _VFLIP, _ANGLE, _AREA, _TX, _TY, _BRIGHT, _CONTRAST, _SATURATION = range(9)
_N_DRAWS = 9


@dataclass
class AugmentSettings:
    """How training images are randomly changed (stored in the project file).

    Attributes
    ----------
    hflip, vflip : bool
        Mirror left-right / upside-down, each for a random half of the images.
    rotation : float
        Rotate by a random angle in ``[-rotation, rotation]`` degrees, 0 to 180.
    crop_scale : float
        Random resized crop: cut out a square-ish part with at least this share of the area
        (0.1 to 1) and stretch it back to full size; 1 is off.
    brightness, contrast, saturation : float
        Colour jitter strength, 0 to 1: each image's factor is uniform in ``[1 - s, 1 + s]``.
        Saturation does nothing to 1-channel images.
    """

    hflip: bool = False
    vflip: bool = False
    rotation: float = 0.0
    crop_scale: float = 1.0
    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0

    @property
    def enabled(self) -> bool:
        """Whether any augmentation is on."""
        return bool(self.hflip or self.vflip or self.geometric or self.colour)

    @property
    def geometric(self) -> bool:
        """Whether images are warped (rotated or cropped)."""
        return self.rotation > 0 or self.crop_scale < 1

    @property
    def colour(self) -> bool:
        """Whether colours are jittered."""
        return self.brightness > 0 or self.contrast > 0 or self.saturation > 0

    def validate(self) -> None:
        """Raise :class:`DataError` when a value is out of range."""
        if not 0 <= self.rotation <= 180:
            raise DataError(f"The rotation must be from 0 to 180 degrees (got {self.rotation:g}).")
        if not 0.1 <= self.crop_scale <= 1:
            raise DataError(f"The random crop must keep from 10% to 100% of the image (got "
                            f"{self.crop_scale:.0%}).")
        for name in ("brightness", "contrast", "saturation"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise DataError(f"The {name} change must be from 0% to 100% (got {value:.0%}).")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> AugmentSettings:
        """Settings from a project file; unknown keys are ignored, missing ones take defaults.

        Raises
        ------
        DataError
            When a value has the wrong type (the range is checked by :meth:`validate`).
        """
        return settings_from_dict(
            cls, d, setting="The augmentation setting",
            not_a_dict="The augmentation settings in the project file are not a set of named "
                       "values; remove them to use no augmentation.")

    def describe(self) -> str:
        """A short phrase for people, e.g. ``horizontal flip, rotation up to 15°``; ``none``."""
        parts = []
        if self.hflip:
            parts.append("horizontal flip")
        if self.vflip:
            parts.append("vertical flip")
        if self.rotation > 0:
            parts.append(f"rotation up to {self.rotation:g}°")
        if self.crop_scale < 1:
            parts.append(f"random crop (at least {self.crop_scale:.0%} of the area)")
        jitter = [f"{name} ±{value:.0%}" for name, value in
                  (("brightness", self.brightness), ("contrast", self.contrast),
                   ("saturation", self.saturation)) if value > 0]
        if jitter:
            parts.append(f"colour jitter ({', '.join(jitter)})")
        return ", ".join(parts) if parts else "none"


def affine_matrices(angles: torch.Tensor, scales: torch.Tensor, shifts: torch.Tensor,
                    height: int, width: int, hflip: torch.Tensor | None = None,
                    vflip: torch.Tensor | None = None) -> torch.Tensor:
    """The ``(N, 2, 3)`` matrices for :func:`~torch.nn.functional.affine_grid`.

    Each output pixel at normalised position ``p`` (in [-1, 1], x right, y down) reads the
    input at ``shift + scale * R(angle) * p`` (with ``p`` first mirrored where a flip is set),
    the rotation being done in pixel units so non-square images are not sheared.

    Parameters
    ----------
    angles : Tensor
        ``(N,)`` radians; a positive angle turns the image content counter-clockwise on screen.
    scales : Tensor
        ``(N,)`` side of the region read, as a share of the image side (1 = whole image).
    shifts : Tensor
        ``(N, 2)`` centre of the region read, normalised (x, y).
    height, width : int
        Image size in pixels.
    hflip, vflip : Tensor, optional
        ``(N,)`` bool: mirror the output left-right / upside-down.
    """
    cos, sin = torch.cos(angles), torch.sin(angles)
    # Rotation in pixel space, conjugated into normalised coordinates: x_n = x_px / (W / 2).
    aspect = height / width
    theta = torch.empty((len(angles), 2, 3), dtype=angles.dtype, device=angles.device)
    theta[:, 0, 0] = scales * cos
    theta[:, 0, 1] = -scales * sin * aspect
    theta[:, 1, 0] = scales * sin / aspect
    theta[:, 1, 1] = scales * cos
    theta[:, :, 2] = shifts
    if hflip is not None:
        theta[:, :, 0] = torch.where(hflip[:, None], -theta[:, :, 0], theta[:, :, 0])
    if vflip is not None:
        theta[:, :, 1] = torch.where(vflip[:, None], -theta[:, :, 1], theta[:, :, 1])
    return theta


def affine_grid(theta: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Same as ``F.affine_grid(theta, (N, C, height, width), align_corners=False)``, faster.

    PyTorch's version multiplies an ``(N, H * W, 3)`` base grid in a batched matmul, which takes
    longer on the CPU than the resampling itself; a few broadcast operations do the same.
    """
    kw = {"dtype": theta.dtype, "device": theta.device}
    # Pixel centres in normalised coordinates (align_corners=False).
    xs = ((torch.arange(width, **kw) * 2 + 1) / width - 1).view(1, 1, width)
    ys = ((torch.arange(height, **kw) * 2 + 1) / height - 1).view(1, height, 1)
    t = theta.reshape(-1, 6, 1, 1).unbind(1)
    # Written into place: torch.stack along a last axis of 2 is slower than the arithmetic.
    grid = torch.empty((len(theta), height, width, 2), **kw)
    grid[..., 0] = t[0] * xs + t[1] * ys + t[2]
    grid[..., 1] = t[3] * xs + t[4] * ys + t[5]
    return grid


def warp(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Resample *x* ``(N, C, H, W)`` through the affine *theta* (bilinear, mirrored padding)."""
    grid = affine_grid(theta.to(device=x.device, dtype=x.dtype), x.shape[2], x.shape[3])
    return F.grid_sample(x, grid, mode="bilinear", padding_mode=PADDING_MODE, align_corners=False)


class Augmenter:
    """Applies :class:`AugmentSettings` to batches, with its own random stream.

    Parameters
    ----------
    settings : AugmentSettings
    seed : int, optional
        Seed of the augmenter's CPU generator; ``None`` draws a fresh one.
    """

    def __init__(self, settings: AugmentSettings, seed: int | None = None):
        settings.validate()
        self.settings = settings
        self.generator = torch.Generator(device="cpu")
        if seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(int(seed))

    def __getstate__(self) -> dict:
        # Sent to a loader's worker process, which always gets a seed per batch: the settings
        # travel, the running stream does not (a generator would go through shared memory).
        return {"settings": self.settings, "state": self.generator.get_state().numpy()}

    def __setstate__(self, state: dict) -> None:
        self.settings = state["settings"]
        self.generator = torch.Generator(device="cpu")
        self.generator.set_state(torch.from_numpy(state["state"]))

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, seed: int | None = None) -> torch.Tensor:
        """Augment a float batch ``(N, C, H, W)`` in [0, 1]; same shape, dtype and device.

        With *seed* the draws come from that seed alone, not from the augmenter's running
        stream: the trainer seeds each batch by its step, so a batch is augmented the same
        wherever it is augmented (a loader's worker process or the training thread) and a
        resumed run goes on exactly as an uninterrupted one. With every augmentation off this
        returns *x* itself.
        """
        s = self.settings
        if not s.enabled:
            return x
        if x.ndim != 4:
            raise ValueError(f"expected a batch (N, C, H, W), got shape {tuple(x.shape)}")
        n, _, h, w = x.shape
        # Parameters are drawn and computed on the CPU whatever the device, then moved: a seed
        # gives bit-identical parameters everywhere (and float64 draws work on any device).
        generator = (self.generator if seed is None
                     else torch.Generator(device="cpu").manual_seed(int(seed)))
        u = torch.rand((n, _N_DRAWS), generator=generator, dtype=torch.float64)
        hflip = u[:, _HFLIP] < 0.5 if s.hflip else None
        vflip = u[:, _VFLIP] < 0.5 if s.vflip else None
        dtype = x.dtype
        # Half precision lacks some CPU kernels and is coarse for sampling positions (near 1 its
        # step is 1/1024, a quarter pixel on a 512-pixel side): work in float32, convert back.
        out = x if dtype in (torch.float32, torch.float64) else x.float()
        if s.geometric:
            angles = (2 * u[:, _ANGLE] - 1) * math.radians(s.rotation)
            # Area uniform in [crop_scale, 1]; the side is its square root.
            scales = torch.sqrt(s.crop_scale + (1 - s.crop_scale) * u[:, _AREA])
            # Keep the (unrotated) crop inside the image.
            shifts = (2 * u[:, [_TX, _TY]] - 1) * (1 - scales)[:, None]
            # Flips are folded into the warp: one resampling instead of three passes.
            theta = affine_matrices(angles, scales, shifts, h, w, hflip, vflip)
            out = warp(out, theta.to(device=x.device, dtype=out.dtype))
        else:
            # Only the chosen samples are flipped and copied back; the indices come from the
            # CPU mask, so there is no device-to-host sync.
            for mask, dim in ((hflip, -1), (vflip, -2)):
                if mask is not None and mask.any():
                    idx = mask.nonzero().squeeze(1).to(x.device)
                    out = out.index_copy(0, idx, out.index_select(0, idx).flip(dim))
        if s.colour:
            out = self._jitter(out, u)
        return out if out.dtype == dtype else out.to(dtype)

    def _jitter(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """Brightness, then contrast, then saturation, in one pass per image.

        Brightness multiplies by ``b``; contrast blends with the image's mean gray level ``m``
        (``c * x + (1 - c) * m``); saturation blends each pixel with its gray level ``g = w . x``
        (``s * x + (1 - s) * g``). All three are linear, so together they are
        ``b c s * x + b c (1 - s) * g + b (1 - c) * m`` (the weights ``w`` sum to 1): two passes
        over the batch instead of a dozen. The result is clamped to [0, 1] once, at the end.
        """
        s = self.settings
        n, c = x.shape[:2]
        # Factors uniform in [1 - strength, 1 + strength], computed on the CPU like the rest.
        strengths = torch.tensor([s.brightness, s.contrast, s.saturation], dtype=u.dtype)
        b, k, sat = (1 + strengths * (2 * u[:, [_BRIGHT, _CONTRAST, _SATURATION]] - 1)).unbind(1)
        if c != 3:  # no colour to saturate; gray is the channel mean
            sat = torch.ones_like(sat)
        # Per image: the weight of x, of its gray image, and of its mean gray level.
        coef = torch.stack((b * k * sat, b * k * (1 - sat), b * (1 - k)))
        coef = coef.to(device=x.device, dtype=x.dtype).view(3, n, 1, 1, 1)
        if c == 3:
            w = _LUMA
            gray = x[:, 0:1] * w[0] + x[:, 1:2] * w[1] + x[:, 2:3] * w[2]
        else:
            gray = x.mean(dim=1, keepdim=True)
        base = coef[2] * gray.mean(dim=(2, 3), keepdim=True)
        if s.saturation > 0 and c == 3:
            base = torch.addcmul(base, gray, coef[1])
        else:  # saturation factor 1: the gray image has no weight
            base = base.expand_as(gray)
        return torch.addcmul(base, x, coef[0]).clamp_(0, 1)

    def preview(self, images: np.ndarray, n_variants: int = 4) -> np.ndarray:
        """Random variants of *images* for a live preview.

        Parameters
        ----------
        images : ndarray
            ``uint8`` ``(N, H, W, C)``.
        n_variants : int
            Variants per image.

        Returns
        -------
        ndarray
            ``uint8`` ``(N, n_variants, H, W, C)``.
        """
        images = np.asarray(images)
        if images.ndim != 4:
            raise ValueError(f"expected images (N, H, W, C), got shape {images.shape}")
        n, h, w, c = images.shape
        x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255
        x = x.repeat_interleave(n_variants, dim=0)
        y = self(x)
        y = (y * 255).round_().clamp_(0, 255).to(torch.uint8)
        return y.permute(0, 2, 3, 1).reshape(n, n_variants, h, w, c).numpy()
