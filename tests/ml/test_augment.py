"""Image augmentation of training batches: settings, tensor ops, determinism, preview."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ml.data.augment import Augmenter, AugmentSettings, affine_grid, affine_matrices, warp
from ml.errors import DataError

EVERYTHING = AugmentSettings(hflip=True, vflip=True, rotation=30, crop_scale=0.6, brightness=0.3,
                             contrast=0.3, saturation=0.3)


def batch(n: int = 16, c: int = 3, h: int = 12, w: int = 10, seed: int = 0) -> torch.Tensor:
    return torch.rand((n, c, h, w), generator=torch.Generator().manual_seed(seed))


def rotation(degrees: float, h: int, w: int) -> torch.Tensor:
    return affine_matrices(torch.tensor([math.radians(degrees)]), torch.ones(1), torch.zeros(1, 2),
                           h, w)


# -- settings -------------------------------------------------------------------------------------
def test_default_settings_are_off_and_anything_turns_them_on():
    assert not AugmentSettings().enabled
    assert AugmentSettings().describe() == "none"
    for kwargs in ({"hflip": True}, {"vflip": True}, {"rotation": 5}, {"crop_scale": 0.9},
                   {"brightness": 0.1}, {"contrast": 0.1}, {"saturation": 0.1}):
        assert AugmentSettings(**kwargs).enabled, kwargs


def test_describe():
    text = AugmentSettings(hflip=True, rotation=15, crop_scale=0.8, brightness=0.2).describe()
    assert text == ("horizontal flip, rotation up to 15°, random crop (at least 80% of the area), "
                    "colour jitter (brightness ±20%)")


def test_settings_round_trip_through_json():
    assert AugmentSettings.from_dict(json.loads(json.dumps(EVERYTHING.to_dict()))) == EVERYTHING
    assert AugmentSettings.from_dict({"rotation": 15, "later_option": 1}).rotation == 15.0
    assert AugmentSettings.from_dict(None) == AugmentSettings()


@pytest.mark.parametrize("doc", [{"hflip": 1}, {"rotation": "15"}, {"brightness": None},
                                 {"contrast": float("nan")}, {"crop_scale": True}, [1, 2]])
def test_settings_with_wrong_types_are_data_errors(doc):
    with pytest.raises(DataError):
        AugmentSettings.from_dict(doc)


@pytest.mark.parametrize("kwargs, message", [
    ({"rotation": -1}, "rotation"), ({"rotation": 181}, "rotation"),
    ({"crop_scale": 0.05}, "crop"), ({"crop_scale": 1.5}, "crop"),
    ({"brightness": 1.5}, "brightness"), ({"contrast": -0.1}, "contrast"),
    ({"saturation": 2}, "saturation"),
])
def test_validate_rejects_out_of_range_values(kwargs, message):
    settings = AugmentSettings(**kwargs)
    with pytest.raises(DataError, match=message) as info:
        settings.validate()
    assert str(info.value).count(". ") == 0  # one plain sentence
    with pytest.raises(DataError):
        Augmenter(settings)


def test_range_limits_are_valid():
    AugmentSettings(rotation=180, crop_scale=0.1, brightness=1, contrast=1, saturation=1).validate()


# -- the augmentation ------------------------------------------------------------------------------
def test_disabled_augmenter_returns_the_same_object():
    x = batch()
    assert Augmenter(AugmentSettings(), seed=0)(x) is x


def test_hflip_flips_about_half_of_the_samples():
    x = batch(n=64)
    y = Augmenter(AugmentSettings(hflip=True), seed=3)(x)
    flipped = [torch.equal(y[i], x[i].flip(-1)) for i in range(64)]
    kept = [torch.equal(y[i], x[i]) for i in range(64)]
    assert all(f != k for f, k in zip(flipped, kept, strict=True))
    assert 16 <= sum(flipped) <= 48


def test_vflip_flips_rows():
    x = batch(n=32)
    y = Augmenter(AugmentSettings(vflip=True), seed=1)(x)
    flipped = sum(torch.equal(y[i], x[i].flip(-2)) for i in range(32))
    kept = sum(torch.equal(y[i], x[i]) for i in range(32))
    assert flipped + kept == 32 and 0 < flipped < 32


def test_flips_folded_into_the_warp_are_exact():
    x = batch(n=4)
    theta = affine_matrices(torch.zeros(4), torch.ones(4), torch.zeros(4, 2), 12, 10,
                            hflip=torch.tensor([True, False, True, False]),
                            vflip=torch.tensor([True, True, False, False]))
    y = warp(x, theta)
    expected = [x[0].flip(-1).flip(-2), x[1].flip(-2), x[2].flip(-1), x[3]]
    for got, want in zip(y, expected, strict=True):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=0)


def test_identity_warp_leaves_images_unchanged():
    x = batch()
    theta = affine_matrices(torch.zeros(16), torch.ones(16), torch.zeros(16, 2), 12, 10)
    torch.testing.assert_close(warp(x, theta), x, atol=1e-6, rtol=0)


def test_affine_grid_matches_torch():
    theta = torch.randn(5, 2, 3, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(affine_grid(theta, 7, 11),
                               F.affine_grid(theta, [5, 1, 7, 11], align_corners=False))


def test_rotation_by_90_degrees_turns_a_pattern_counter_clockwise():
    x = torch.zeros(1, 1, 5, 5)
    x[0, 0, 0, :3] = 1.0  # a bar along the top, from the left
    x[0, 0, 1, 0] = 0.5
    y = warp(x, rotation(90, 5, 5))
    torch.testing.assert_close(y, torch.rot90(x, 1, dims=(2, 3)), atol=1e-5, rtol=0)
    # Non-square images rotate in pixel units: the central square turns like a square would.
    x = batch(n=1, c=1, h=6, w=10)
    y = warp(x, rotation(90, 6, 10))
    torch.testing.assert_close(y[..., 2:8], torch.rot90(x[..., 2:8], 1, dims=(2, 3)),
                               atol=1e-5, rtol=0)
    y = warp(x, rotation(180, 6, 10))
    torch.testing.assert_close(y, x.flip(-1).flip(-2), atol=1e-5, rtol=0)


@pytest.mark.parametrize("channels", [1, 3])
def test_everything_on_preserves_shape_dtype_and_range(channels):
    x = batch(c=channels)
    y = Augmenter(EVERYTHING, seed=0)(x)
    assert y.shape == x.shape and y.dtype == x.dtype and y.device == x.device
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    assert not torch.equal(y, x)
    assert torch.isfinite(y).all()


def test_same_seed_same_result_and_calls_differ():
    x = batch()
    a, b = Augmenter(EVERYTHING, seed=7), Augmenter(EVERYTHING, seed=7)
    first = a(x)
    assert torch.equal(first, b(x))
    assert not torch.equal(first, a(x))  # a new draw on every batch
    assert not torch.equal(first, Augmenter(EVERYTHING, seed=8)(x))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_other_float_dtypes_work_on_cpu(dtype):
    x = batch().to(dtype)
    y = Augmenter(EVERYTHING, seed=0)(x)
    assert y.dtype == dtype and y.shape == x.shape
    reference = Augmenter(EVERYTHING, seed=0)(x.float())
    torch.testing.assert_close(y.float(), reference, atol=1e-2, rtol=0)


def test_brightness_scales_and_contrast_keeps_the_mean():
    x = torch.full((8, 3, 4, 4), 0.25)
    y = Augmenter(AugmentSettings(brightness=0.5), seed=0)(x)
    factors = y[:, 0, 0, 0] / 0.25
    assert ((factors >= 0.5) & (factors <= 1.5)).all() and factors.std() > 0
    assert torch.allclose(y, y[:, :1, :1, :1].expand_as(y))  # uniform change per image
    x = batch(n=8) * 0.5 + 0.25  # no clamping at these strengths
    y = Augmenter(AugmentSettings(contrast=0.5), seed=0)(x)
    luma = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    torch.testing.assert_close((y * luma).sum(1).mean((1, 2)), (x * luma).sum(1).mean((1, 2)))


def test_colour_jitter_equals_brightness_then_contrast_then_saturation():
    x = batch(n=6) * 0.4 + 0.3  # mid-range, so the factors below never clamp
    settings = AugmentSettings(brightness=0.2, contrast=0.3, saturation=0.5)
    u = torch.rand((6, 9), generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    got = Augmenter(settings, seed=0)._jitter(x, u)

    def factor(column: int, strength: float) -> torch.Tensor:
        return (1 + strength * (2 * u[:, column] - 1)).float().view(6, 1, 1, 1)

    luma = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    y = x * factor(6, 0.2)
    mean = (y * luma).sum(1, keepdim=True).mean((2, 3), keepdim=True)
    y = mean + factor(7, 0.3) * (y - mean)
    gray = (y * luma).sum(1, keepdim=True)
    y = gray + factor(8, 0.5) * (y - gray)
    torch.testing.assert_close(got, y)


def test_saturation_leaves_gray_and_single_channel_images_alone():
    gray = torch.rand(4, 1, 6, 6).expand(4, 3, 6, 6).contiguous()
    aug = Augmenter(AugmentSettings(saturation=1.0), seed=0)
    torch.testing.assert_close(aug(gray), gray, atol=1e-6, rtol=0)
    one = batch(c=1)
    torch.testing.assert_close(aug(one), one)


def test_rejects_a_non_batch():
    with pytest.raises(ValueError):
        Augmenter(EVERYTHING, seed=0)(torch.rand(3, 8, 8))


@pytest.mark.requires_cuda
def test_cuda_matches_cpu_for_the_same_seed():
    x = batch()
    cpu = Augmenter(EVERYTHING, seed=5)(x)
    gpu = Augmenter(EVERYTHING, seed=5)(x.cuda())
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-4, rtol=0)


# -- preview --------------------------------------------------------------------------------------
@pytest.mark.parametrize("channels", [1, 3])
def test_preview_shapes(channels):
    images = np.random.default_rng(0).integers(0, 256, (3, 9, 11, channels), dtype=np.uint8)
    out = Augmenter(EVERYTHING, seed=0).preview(images, n_variants=4)
    assert out.shape == (3, 4, 9, 11, channels) and out.dtype == np.uint8
    assert not np.array_equal(out[:, 0], out[:, 1])


def test_preview_without_augmentation_repeats_the_images():
    images = np.random.default_rng(0).integers(0, 256, (2, 5, 5, 3), dtype=np.uint8)
    out = Augmenter(AugmentSettings(), seed=0).preview(images, n_variants=2)
    assert np.array_equal(out[:, 0], images) and np.array_equal(out[:, 1], images)
