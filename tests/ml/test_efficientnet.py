"""EfficientNet-Lite0: the shipped ImageNet weights load strictly, a damaged copy is refused,
and the network gives the known answer on a sample photo with the network unplugged."""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket

import numpy as np
import pytest
import torch

from ml.errors import ModelSpecError
from ml.models import efficientnet as eff

# Trained ImageNet class of scikit-learn's sample flower photo.
DAISY = 985
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


@pytest.fixture(scope="module")
def pretrained():
    return eff.pretrained_lite0()


@pytest.fixture
def offline(monkeypatch):
    """Any attempt to open a network connection fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("EfficientNet-Lite0 tried to use the network")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


def test_features_and_logits_shapes():
    torch.manual_seed(0)
    model = eff.EfficientNetLite0().eval()
    with torch.no_grad():
        x = torch.randn(2, 3, 32, 32)
        assert model.forward_features(x).shape == (2, eff.FEATURES)
        assert model(x).shape == (2, 1000)
        # Fully convolutional: odd and non-square sizes work too.
        assert model.forward_features(torch.randn(1, 3, 33, 47)).shape == (1, eff.FEATURES)


@pytest.mark.parametrize("kernel", [3, 5])
@pytest.mark.parametrize("size", [(8, 8), (9, 9), (8, 11)])
def test_stride_two_pads_like_tensorflow_same(kernel, size):
    # TF 'SAME': total padding max((ceil(n / s) - 1) * s + k - n, 0), the odd pixel after.
    conv = eff._conv(2, 2, kernel, stride=2)
    x = torch.randn(1, 2, *size)
    pads = []
    for n in size[::-1]:
        total = max((-(-n // 2) - 1) * 2 + kernel - n, 0)
        pads += [total // 2, total - total // 2]
    expected = torch.nn.functional.conv2d(torch.nn.functional.pad(x, pads), conv.weight,
                                          stride=2)
    with torch.no_grad():
        assert torch.allclose(conv(x), expected, atol=1e-6)


def test_layer_groups_cover_every_parameter_once():
    model = eff.EfficientNetLite0()
    groups = model.layer_groups()
    assert len(groups) == 5
    assert groups[0][0] is model._conv_stem and groups[-1][-1] is model._fc
    ids = [id(p) for group in groups for module in group for p in module.parameters()]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))


def test_real_weights_load_strictly(pretrained):
    path = eff.lite0_weights_path()
    assert path.name == "efficientnet-lite0-57934424.pth"
    state = torch.load(path, weights_only=True, map_location="cpu")
    assert len(state) == len(pretrained.state_dict()) == 296
    for key, value in state.items():
        assert torch.equal(pretrained.state_dict()[key], value), key
    assert not pretrained.training


def test_other_class_count_keeps_the_body(pretrained):
    model = eff.pretrained_lite0(num_classes=3)
    assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 3)
    assert torch.equal(model._conv_head.weight, pretrained._conv_head.weight)


def test_damaged_copy_is_refused(tmp_path):
    copy = tmp_path / "lite0.pth"
    shutil.copyfile(eff.lite0_weights_path(), copy)
    with copy.open("r+b") as handle:
        handle.seek(1_000_000)
        byte = handle.read(1)
        handle.seek(1_000_000)
        handle.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(ModelSpecError, match="is damaged .checksum differs.; reinstall"):
        eff.load_lite0(eff.EfficientNetLite0(), path=copy)


def test_checksum_is_computed_once_per_file(tmp_path, monkeypatch):
    copy = tmp_path / "lite0.pth"
    shutil.copyfile(eff.lite0_weights_path(), copy)
    eff.verify_weights(copy)
    monkeypatch.setattr(eff, "_sha256", lambda path: "not hashed again")
    eff.verify_weights(copy)
    # A file changed since (new mtime) is hashed again.
    stat = copy.stat()
    os.utime(copy, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    with pytest.raises(ModelSpecError, match="damaged"):
        eff.verify_weights(copy)


def test_missing_package_says_to_reinstall(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == eff.WEIGHTS_PACKAGE else real(name, *a))
    with pytest.raises(ModelSpecError, match=r"not installed .*==0\.1\.0\); reinstall TrainDesk\."):
        eff.lite0_weights_path()


def _flower_224() -> np.ndarray:
    from PIL import Image
    from sklearn.datasets import load_sample_image

    # The whole photo squeezed to 224x224 (bilinear). A 256 resize + 224 center crop also gives
    # daisy, but then ImageNet mean/std normalisation happens to give daisy as well.
    image = Image.fromarray(load_sample_image("flower.jpg"))
    return np.asarray(image.resize((224, 224), Image.BILINEAR), dtype=np.float32)


def _top1(model, pixels: np.ndarray) -> int:
    batch = torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)))[None]
    with torch.no_grad():
        return int(model(batch.float()).argmax(1))


def test_known_prediction_offline(offline, pretrained):
    pixels = _flower_224()
    lite = eff.normalise_pixels(torch.from_numpy(pixels)).numpy()
    assert _top1(pretrained, lite) == DAISY
    # The weights expect (x - 127) / 128; the usual ImageNet normalisation misreads the photo.
    assert _top1(pretrained, (pixels / 255 - IMAGENET_MEAN) / IMAGENET_STD) != DAISY
