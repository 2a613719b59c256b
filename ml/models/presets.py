"""Ready-made networks for every kind of data, chosen from the data or by the user.

Tables: linear/logistic regression, an ensemble MLP with number embeddings (TabM-mini, see
:mod:`ml.models.tabular`), MLPs of three sizes and one with batch norm
and dropout.
Images: a small CNN (the cats-vs-dogs / CIFAR-10 tutorial network), a VGG-style CNN and a small
ResNet, each adapting its first layer to the channels and its poolings to the image size.
Text: bag of embeddings (fastText-style), an LSTM/GRU and a small Transformer encoder.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import ModelSpecError
from ..runs.project import ModelConfig
from .spec import InputSpec, ModelSpec, summarize


@dataclass(frozen=True)
class PresetInfo:
    """A preset as the Model page and ``main.py models`` list it."""

    name: str
    title: str
    kind: str  # tabular | image | text
    description: str


PRESET_INFO: dict[str, PresetInfo] = {p.name: p for p in (
    PresetInfo("tabm", "TabM ensemble MLP", "tabular",
               "Each number cut into bins at the data's quantiles and embedded, then a few MLPs "
               "that share their hidden layers, each trained on its own loss, their answers "
               "averaged: the default for tables (ahead of gradient boosting on our benchmark)."),
    PresetInfo("linear", "Linear / logistic regression", "tabular",
               "One linear layer: linear regression, or logistic regression for classes. The "
               "classic baseline."),
    PresetInfo("mlp_small", "MLP, small (64-32)", "tabular",
               "Two small hidden layers with dropout: for a few hundred rows."),
    PresetInfo("mlp", "MLP (hidden sizes as set)", "tabular",
               "Fully connected hidden layers of the sizes you set: the all-round choice."),
    PresetInfo("mlp_large", "MLP, large (512-256-128)", "tabular",
               "Three wide hidden layers: for tens of thousands of rows and more."),
    PresetInfo("mlp_bn", "MLP with batch norm and dropout", "tabular",
               "Hidden layers with batch normalisation and dropout: trains fast, resists "
               "overfitting."),
    PresetInfo("cnn", "Small CNN (conv-pool blocks)", "image",
               "Convolution + pooling blocks then a small dense head, as in the classic "
               "cats-vs-dogs and CIFAR-10 tutorials."),
    PresetInfo("vgg", "VGG-style CNN", "image",
               "Blocks of two 3x3 convolutions with batch norm before each pooling: deeper, "
               "more accurate, slower."),
    PresetInfo("resnet", "Small ResNet", "image",
               "Residual blocks (with skip connections) and global average pooling: the "
               "strongest image preset for bigger datasets."),
    PresetInfo("text", "Bag of embeddings (fastText-style)", "text",
               "Vectors of the words and of each pair of neighbouring words (hashed), averaged, "
               "then a small dense head: fast, and as strong as TF-IDF on most texts."),
    PresetInfo("rnn", "LSTM / GRU classifier", "text",
               "Word vectors read in order by a bidirectional recurrent layer: word order "
               "matters."),
    PresetInfo("transformer", "Small Transformer encoder", "text",
               "Word and position vectors through two self-attention layers, then averaged."),
)}
#: Learning rates (Adam) that suit a preset better than the usual 0.001: a single linear
#: layer needs bigger steps to converge in the epochs an MLP is given (measured on the samples:
#: iris 0.86 -> 0.97 accuracy with 0.01); the bag of word vectors likewise, whose rarer words
#: get few updates (bench_quality's texts: 600 topics 0.667 -> 0.775, tweets 0.770 -> 0.783).
PRESET_LR = {"linear": 0.01, "tabm": 2e-3, "text": 0.01}
DEFAULT_LR = 1e-3


def suggested_lr(preset: str) -> float:
    """The learning rate suggested with *preset*."""
    return PRESET_LR.get(preset, DEFAULT_LR)


#: Titles by preset name (older callers).
PRESET_TITLES = {name: info.title for name, info in PRESET_INFO.items()}
#: Width of the word vectors of the text presets.
TEXT_EMBED_DIM = 64
_KIND_WORDS = {"tabular": "a table", "image": "images", "text": "text"}


def embedding_dim(cardinality: int) -> int:
    """Embedding width for a category count: fastai's rule of thumb, capped for small data."""
    return int(max(2, min(32, round(1.6 * cardinality ** 0.56))))


def default_preset(input_shape: InputSpec | Sequence[int]) -> str:
    """The preset that suits the input: text model for token ids, CNN for images, else the
    TabM-style ensemble (see :func:`suggest_settings`)."""
    spec = InputSpec.of(input_shape)
    if spec.kind == "text":
        return "text"
    return "cnn" if len(spec.shape) == 3 else "tabm"


def mlp_layers(hidden: Sequence[int], n_outputs: int, activation: str = "relu",
               dropout: float = 0.0, batch_norm: bool = False, flatten: bool = False
               ) -> list[dict]:
    """Hidden blocks of Linear -> [BatchNorm] -> activation -> [Dropout], then the output layer."""
    layers: list[dict] = [{"type": "flatten"}] if flatten else []
    for size in hidden:
        layers.append({"type": "linear", "out_features": int(size)})
        if batch_norm:
            layers.append({"type": "batchnorm"})
        layers.append({"type": activation})
        if dropout > 0:
            layers.append({"type": "dropout", "p": float(dropout)})
    layers.append({"type": "linear", "out_features": int(n_outputs)})
    return layers


def cnn_layers(input_shape: Sequence[int], channels: Sequence[int], hidden: Sequence[int],
               n_outputs: int, activation: str = "relu", dropout: float = 0.0,
               batch_norm: bool = True) -> list[dict]:
    """Conv(3x3) -> [BatchNorm] -> activation -> MaxPool(2) blocks, then an MLP head.

    Pooling is skipped once the feature map is smaller than 4 pixels on a side, so the preset
    adapts to tiny images (8x8 digits) as well as larger ones.
    """
    if len(input_shape) != 3:
        raise ModelSpecError("A CNN needs image data (channels x height x width); this data is a "
                             "table. Choose the MLP.")
    layers = _image_blocks(input_shape, channels, 1, activation, batch_norm)
    pools = sum(1 for layer in layers if layer["type"] == "maxpool2d")
    h, w = int(input_shape[1]) >> pools, int(input_shape[2]) >> pools
    if h * w > 16:  # keep the head small on big images
        layers.append({"type": "adaptive_avgpool2d", "output_size": 4})
    layers.append({"type": "flatten"})
    if dropout > 0:
        layers.append({"type": "dropout", "p": float(dropout)})
    layers += mlp_layers(hidden[:1], n_outputs, activation, dropout=dropout)
    return layers


#: The members of the tabm preset's ensemble. TabM's paper uses 32; 4 scored as well on
#: bench_quality's 12 tables (3 splits each) and trains several times faster on 2 cores.
TABM_MEMBERS = 4
#: Bins and width of each number's embedding.
TABM_BINS, TABM_EMBED_DIM = 16, 16


def tabm_layers(spec_in: InputSpec, hidden: Sequence[int], n_outputs: int, dropout: float,
                flat: bool = False, members: int = TABM_MEMBERS) -> list[dict]:
    """The ``tabm`` preset: category embeddings, piecewise-linear number embeddings, and a
    TabM-mini ensemble of *members* MLPs whose shared blocks have the widths *hidden* (the first
    width is used for every block, as TabM does)."""
    blocks = max(1, len(hidden))
    width = int(hidden[0]) if hidden else 256
    n_inputs = math.prod(spec_in.shape)
    numbers = n_inputs - len(spec_in.embeddings or ())
    layers = ([{"type": "flatten"}] if flat else []) + _embed_layers(spec_in)
    if numbers > 0:
        layers.append({"type": "numeric_embed", "features": int(numbers), "bins": TABM_BINS,
                       "dim": TABM_EMBED_DIM})
    layers.append({"type": "ensemble_mlp", "k": int(members), "blocks": blocks, "width": width,
                   "dropout": float(dropout), "out_features": int(n_outputs),
                   "merge": "probs" if n_outputs > 1 else "mean"})
    return layers


def _embed_layers(spec_in: InputSpec) -> list[dict]:
    if not spec_in.embeddings:
        return []
    return [{"type": "embed_columns", "columns": [[int(pos), int(card), embedding_dim(card)]
                                                  for pos, card in spec_in.embeddings]}]


def with_data_embeddings(layers: Sequence[dict], input_spec: InputSpec | Sequence[int]
                         ) -> list[dict]:
    """*layers* with a first Column embeddings layer's columns taken from the data.

    Which inputs hold category codes, and how many codes each has, is the data's business
    (the editor shows it as "set from the data"): a hand-added layer starts empty, and one set
    up on the whole file can meet other positions once training fits on its own split. The
    widths the user chose are kept when the number of columns still matches. A table with no
    embedded columns, or a layer in another place, is left for :func:`check_layers` to judge.
    """
    out = [dict(layer) for layer in layers]
    spec_in = InputSpec.of(input_spec)
    if not out or out[0].get("type") != "embed_columns" or not spec_in.embeddings:
        return out
    try:
        dims = [int(dim) for _, _, dim in out[0].get("columns") or []]
    except (TypeError, ValueError):
        dims = []
    if len(dims) != len(spec_in.embeddings):
        dims = [embedding_dim(card) for _, card in spec_in.embeddings]
    out[0]["columns"] = [[int(pos), int(card), dim]
                         for (pos, card), dim in zip(spec_in.embeddings, dims, strict=True)]
    return out


def _image_blocks(shape: Sequence[int], channels: Sequence[int], convs: int, activation: str,
                  batch_norm: bool) -> list[dict]:
    """VGG-style blocks: *convs* 3x3 convolutions, then a 2x2 max pooling while the map is at
    least 4 pixels on a side."""
    _, h, w = shape
    layers: list[dict] = []
    for ch in channels:
        for _ in range(convs):
            layers.append({"type": "conv2d", "out_channels": int(ch), "kernel_size": 3,
                           "padding": 1, "bias": not batch_norm})
            if batch_norm:
                layers.append({"type": "batchnorm"})
            layers.append({"type": activation})
        if min(h, w) >= 4:
            layers.append({"type": "maxpool2d", "kernel_size": 2})
            h, w = h // 2, w // 2
    return layers


def _resnet_layers(shape: Sequence[int], channels: Sequence[int], n_outputs: int) -> list[dict]:
    """A stem convolution, one residual block per stage (stride 2 from the second stage while
    the map is at least 8 pixels), global average pooling and a linear head."""
    _, h, w = shape
    first = int(channels[0])
    layers: list[dict] = [{"type": "conv2d", "out_channels": first, "kernel_size": 3,
                           "padding": 1, "bias": False}, {"type": "batchnorm"},
                          {"type": "relu"}]
    for i, ch in enumerate(channels):
        stride = 2 if i > 0 and min(h, w) >= 8 else 1
        layers.append({"type": "residual_block", "out_channels": int(ch), "stride": stride})
        if stride == 2:
            h, w = (h + 1) // 2, (w + 1) // 2
    layers += [{"type": "adaptive_avgpool2d", "output_size": 1}, {"type": "flatten"},
               {"type": "linear", "out_features": int(n_outputs)}]
    return layers


def preset_fits(name: str, kind: str) -> bool:
    """Whether preset *name* can take data of *kind* (``tabular``, ``image``, ``text``):
    its own kind, and the dense presets also take images (flattened, as the classic MNIST
    MLP does)."""
    info = PRESET_INFO[name]
    return info.kind == kind or (info.kind == "tabular" and kind == "image")


def resolve_preset(config: ModelConfig, input_spec: InputSpec | Sequence[int]) -> str:
    """The preset *config* stands for ("auto": the one that suits the input)."""
    return config.preset if config.preset != "auto" else default_preset(input_spec)


def preset_layers(name: str, config: ModelConfig, input_spec: InputSpec | Sequence[int],
                  n_outputs: int) -> list[dict]:
    """The layers of preset *name* (``"auto"`` allowed) for this input, sized by *config*.

    Raises
    ------
    ModelSpecError
        When the preset is for another kind of data (a CNN on a table, an LSTM on images...).
    """
    spec_in = InputSpec.of(input_spec)
    shape = spec_in.shape
    if name == "auto":
        name = default_preset(spec_in)
    info = PRESET_INFO.get(name)
    if info is None:
        raise ModelSpecError(f"Unknown preset {name!r}; choose one of "
                             f"{', '.join(PRESET_INFO)}.")
    kind = spec_in.kind if spec_in.kind in _KIND_WORDS else "tabular"
    if not preset_fits(name, kind):
        if info.kind == "image":
            raise ModelSpecError(f"{info.title} needs image data (channels x height x width); "
                                 f"this data is {_KIND_WORDS[kind]}. Choose a preset for "
                                 f"{_KIND_WORDS[kind]}.")
        raise ModelSpecError(f"{info.title} is for {_KIND_WORDS[info.kind]}; this data is "
                             f"{_KIND_WORDS[kind]}. Choose a preset for {_KIND_WORDS[kind]}.")
    act, drop = config.activation, config.dropout
    flat = len(shape) > 1
    if name == "linear":
        return _embed_layers(spec_in) + ([{"type": "flatten"}] if flat else []) + [
            {"type": "linear", "out_features": int(n_outputs)}]
    if name in ("mlp", "mlp_small", "mlp_large", "mlp_bn"):
        hidden = {"mlp_small": [64, 32], "mlp_large": [512, 256, 128]}.get(name, config.hidden)
        dropout = {"mlp_small": max(drop, 0.2), "mlp_bn": max(drop, 0.2)}.get(name, drop)
        return _embed_layers(spec_in) + mlp_layers(hidden, n_outputs, act, dropout,
                                                   batch_norm=name == "mlp_bn", flatten=flat)
    if name == "tabm":
        return tabm_layers(spec_in, config.hidden, n_outputs, drop, flat, config.ensemble)
    if name == "cnn":
        return cnn_layers(shape, config.conv_channels, config.hidden, n_outputs, act, drop,
                          config.batch_norm)
    if name == "vgg":
        channels = list(config.conv_channels) or [32, 64]
        channels = channels + [channels[-1] * 2] if len(channels) < 3 else channels
        layers = _image_blocks(shape, channels, 2, act, True)
        layers += [{"type": "adaptive_avgpool2d", "output_size": 1}, {"type": "flatten"},
                   {"type": "dropout", "p": max(drop, 0.2)}]
        return layers + mlp_layers(config.hidden[:1], n_outputs, act)
    if name == "resnet":
        return _resnet_layers(shape, list(config.conv_channels) or [32, 64], n_outputs)
    vocab = int(spec_in.vocab_size)
    if name == "text":
        return [{"type": "embedding_bag", "vocab_size": vocab, "dim": TEXT_EMBED_DIM,
                 "buckets": pair_buckets(vocab)}] + mlp_layers(config.hidden, n_outputs, act,
                                                             drop)
    if name == "rnn":
        return [{"type": "embedding", "vocab_size": vocab, "dim": TEXT_EMBED_DIM},
                {"type": config.rnn_cell, "hidden_size": 64, "num_layers": 1,
                 "bidirectional": True, "return_sequence": False},
                {"type": "dropout", "p": max(drop, 0.1)},
                {"type": "linear", "out_features": int(n_outputs)}]
    # transformer
    return [{"type": "embedding", "vocab_size": vocab, "dim": TEXT_EMBED_DIM,
             "positional": True},
            {"type": "transformer_encoder", "nhead": 4, "dim_feedforward": 128,
             "dropout": 0.1},
            {"type": "transformer_encoder", "nhead": 4, "dim_feedforward": 128,
             "dropout": 0.1},
            {"type": "sequence_pool", "mode": "mean"},
            {"type": "dropout", "p": max(drop, 0.1)},
            {"type": "linear", "out_features": int(n_outputs)}]


def build_spec(config: ModelConfig, input_shape: InputSpec | Sequence[int], n_outputs: int,
               task: str) -> ModelSpec:
    """Turn the user's model choices into a checked :class:`ModelSpec`: the preset's layers,
    or the hand-edited ones in ``config.layers``.

    *input_shape* is the data's :class:`InputSpec` (or a bare shape for plain float input).

    Raises
    ------
    ModelSpecError
        If the choices do not fit the data (a CNN on a table, a layer that cannot take its
        input, a last layer that does not give the task's outputs).
    """
    config.validate()
    spec_in = InputSpec.of(input_shape)
    preset = resolve_preset(config, spec_in)
    if config.backbone:
        layers, name = backbone_head(config, spec_in, n_outputs)
    elif config.layers:
        layers = with_data_embeddings(config.layers, spec_in)
        name = "custom"
    else:
        layers = preset_layers(preset, config, spec_in, n_outputs)
        name = preset
    spec = ModelSpec(input_shape=list(spec_in.shape), layers=layers, task=task, name=name,
                     input_dtype=spec_in.dtype)
    summarize(spec, n_outputs=n_outputs, embeddings=spec_in.embeddings)
    return spec


def backbone_head(config: ModelConfig, spec_in: InputSpec, n_outputs: int
                  ) -> tuple[list[dict], str]:
    """A pretrained backbone under a new head: dropout and one linear layer (the layers and the
    model's name)."""
    from .backbones import layer_info, resolve

    backbone = resolve(config.backbone)
    if backbone.kind == "text" and spec_in.kind == "tabular":
        raise ModelSpecError(f"{backbone.title} reads text, but no column of this data is read "
                             f"as text (short or repeated values look like categories). Set "
                             f"the text column's type to text on the Data page, or train from "
                             f"scratch.")
    if backbone.kind != spec_in.kind:
        what = {"image": "images", "text": "text", "tabular": "a table"}
        raise ModelSpecError(f"{backbone.title} reads {what[backbone.kind]}, but this data is "
                             f"{what.get(spec_in.kind, spec_in.kind)}; pick another backbone or "
                             f"train from scratch.")
    layers = [layer_info(backbone), {"type": "dropout", "p": float(config.dropout)},
              {"type": "linear", "out_features": int(n_outputs)}]
    return layers, f"{backbone.key if backbone.builtin else 'pretrained'}-{config.train_mode}"


def propose_preset(input_spec: InputSpec | Sequence[int], n_train: int = 0,
                   n_classes: int = 0) -> str:
    """The preset the app proposes for this data (see :func:`suggest_settings`)."""
    return suggest_settings(max(int(n_train), 1), input_spec)[0].preset


def pair_buckets(vocab: int) -> int:
    """Rows for the word-pair vectors of the bag-of-embeddings model: the power of two at or
    above twice the vocabulary, 256 to 65,536 (so at most 4 M numbers at 64 wide: pairs
    collide more in a big vocabulary, but the model stays quick to train and small to ship)."""
    return int(min(1 << 16, max(1 << 8, 1 << max(0, int(2 * vocab - 1).bit_length()))))


#: What a suggested table schedule under 20,000 rows adds (TabM's patience, Gorishniy et al.).
TABLE_EARLY_STOPPING = {"early_stopping": True, "patience": 16}


def suggest_settings(n_train: int, input_shape: InputSpec | Sequence[int]
                     ) -> tuple[ModelConfig, dict]:
    """A sensible model and training schedule for *n_train* rows of inputs shaped *input_shape*.

    Tables get the TabM-style ensemble (small and regularised for a few hundred rows, with many
    epochs of few steps); images get the CNN; big data gets bigger batches and fewer epochs.
    Returns the model config and a dict of :class:`~ml.runs.project.TrainingConfig` fields
    (``batch_size``, ``epochs``; for tables under 20,000 rows ``early_stopping`` and
    ``patience`` too).
    """
    def epochs_for(target_steps: int, batch: int, lo: int, hi: int) -> int:
        steps = max(1, -(-n_train // batch))
        return int(min(hi, max(lo, round(target_steps / steps))))

    spec_in = InputSpec.of(input_shape)
    input_shape = spec_in.shape
    if spec_in.kind == "text":
        batch = 32 if n_train < 2000 else 64 if n_train < 50_000 else 256
        model = ModelConfig(preset="text", hidden=[64], dropout=0.2)
        return model, {"batch_size": batch, "epochs": epochs_for(3000, batch, 5, 80)}
    if len(input_shape) == 3:
        batch = 32 if n_train < 2000 else 64 if n_train < 50_000 else 128
        model = ModelConfig(preset="cnn", hidden=[128], conv_channels=[32, 64], dropout=0.25,
                            batch_norm=True)
        return model, {"batch_size": batch, "epochs": epochs_for(1500, batch, 5, 60)}
    # Tables: TabM-style (number embeddings, an ensemble of MLPs sharing their layers), which
    # beat gradient boosting on bench_quality's 12 tables where the plain MLP trailed it on two.
    # Under 20,000 rows the budget is twice what most runs need, and early stopping ends them
    # soon after validation peaks: classification peaks early, some regressions improve to
    # the end (docs/benchmarks.md, "Early stopping").
    if n_train < 1000:
        model = ModelConfig(preset="tabm", hidden=[64, 64], dropout=0.2, ensemble=TABM_MEMBERS)
        return model, {"batch_size": 32, "epochs": 2 * epochs_for(1500, 32, 20, 200),
                       **TABLE_EARLY_STOPPING}
    if n_train < 20_000:
        model = ModelConfig(preset="tabm", hidden=[128, 128], dropout=0.1,
                            ensemble=TABM_MEMBERS)
        return model, {"batch_size": 64, "epochs": 2 * epochs_for(3000, 64, 10, 100),
                       **TABLE_EARLY_STOPPING}
    model = ModelConfig(preset="tabm", hidden=[128, 128], dropout=0.1, ensemble=TABM_MEMBERS)
    return model, {"batch_size": 256, "epochs": epochs_for(5000, 256, 5, 30)}


# -- pretrained backbones ------------------------------------------------------------------------
#: The Model page proposes a text backbone when its estimated training takes at most this long.
TEXT_BACKBONE_SECONDS = 600.0
#: Images smaller than this a side (8 x 8 digits, 28 x 28 MNIST) are trained from scratch: a
#: backbone would read them blown up to 224 pixels, at hundreds of times the cost.
BACKBONE_MIN_SIDE = 32
#: The built-in backbone proposed for each kind of data.
DEFAULT_BACKBONES = {"image": "efficientnet_lite0", "text": "minilm"}
TRAIN_MODE_TITLES = {"probe": "linear probe", "finetune": "fine-tune", "lora": "LoRA"}


def backbone_input(backbone, spec_in: InputSpec, text_length: int = 0) -> InputSpec:
    """What the network reads with *backbone* first: images at its side in RGB, text as its
    word pieces (its length and vocabulary); other inputs unchanged.

    *backbone* is a :class:`~ml.models.backbones.Backbone`; *spec_in* what the data gives
    without one (the preview's estimate before the data is prepared for the backbone);
    *text_length*: the word pieces the data's texts need (see
    :func:`ml.data.dataset.backbone_text_length`), else the backbone's longest."""
    if backbone.kind == "image" and spec_in.kind == "image":
        return InputSpec((3, int(backbone.image_size), int(backbone.image_size)), kind="image")
    if backbone.kind == "text" and spec_in.kind == "text":
        vocab = int(backbone.config.get("vocab_size") or spec_in.vocab_size or 3)
        length = min(int(text_length), backbone.max_length) if text_length else \
            backbone.max_length
        return InputSpec((int(length),), dtype="int64", kind="text",
                         vocab_size=vocab)
    return spec_in


def backbone_schedule(mode: str, n_train: int) -> dict:
    """Training settings for a backbone trained by *mode* on *n_train* rows.

    Fine-tuning: the head's rate 1e-3 (earlier groups get smaller ones by themselves), a batch
    of 16 for small data (32 from 2,000 rows), 5-10 epochs; LoRA the same at 2e-3 (adapters
    start at zero); a linear probe trains only the head on cached features: 3e-3, 30 epochs.
    """
    batch = 16 if n_train < 2000 else 32
    if mode == "probe":
        return {"lr": 3e-3, "batch_size": 32, "epochs": 30}
    epochs = 10 if n_train < 500 else 8 if n_train < 5000 else 5
    return {"lr": 2e-3 if mode == "lora" else 1e-3, "batch_size": batch, "epochs": epochs}


def backbone_fits(spec_in: InputSpec | Sequence[int]) -> bool:
    """Whether a built-in backbone is worth proposing for this input: images of at least
    :data:`BACKBONE_MIN_SIDE` pixels a side, or text."""
    spec_in = InputSpec.of(spec_in)
    if spec_in.kind == "text":
        return True
    return spec_in.kind == "image" and len(spec_in.shape) == 3 and \
        min(spec_in.shape[1:]) >= BACKBONE_MIN_SIDE


def propose_backbone(n_train: int, input_spec: InputSpec | Sequence[int],
                     text_seconds: float | None = None
                     ) -> tuple[ModelConfig, dict, str] | None:
    """The pretrained start the app proposes for this data, or None (then
    :func:`suggest_settings`' network from scratch): EfficientNet-Lite0 fine-tuning for images
    of :data:`BACKBONE_MIN_SIDE` pixels or more; for text, MiniLM fine-tuning when
    *text_seconds* (its estimated training time on this machine) is at most
    :data:`TEXT_BACKBONE_SECONDS`. Returns the model config, the training settings
    (:func:`backbone_schedule`) and one sentence saying why."""
    from ..labels import format_minutes

    spec_in = InputSpec.of(input_spec)
    if not backbone_fits(spec_in):
        return None
    if spec_in.kind == "text":
        if text_seconds is None or text_seconds > TEXT_BACKBONE_SECONDS:
            return None
        why = (f"Proposed: MiniLM, fine-tuned - a pretrained text model that already knows "
               f"English; about {format_minutes(text_seconds)} of training on this machine.")
    else:
        why = ("Proposed: EfficientNet-Lite0, fine-tuned - a network pretrained on ImageNet "
               "photos learns from few images.")
    model = ModelConfig(preset="auto", dropout=0.2, backbone=DEFAULT_BACKBONES[spec_in.kind],
                        train_mode="finetune", head_epochs=1)
    return model, backbone_schedule("finetune", n_train), why


def text_too_slow_sentence(text_seconds: float) -> str:
    """Why the fast text model is proposed instead of MiniLM."""
    from ..labels import format_minutes

    return (f"Proposed: the fast bag-of-embeddings model - fine-tuning MiniLM would take about "
            f"{format_minutes(text_seconds)} on this machine (more than "
            f"{format_minutes(TEXT_BACKBONE_SECONDS)}).")


#: Values EfficientNet-Lite0 keeps for learning per 224 x 224 image (every layer's output,
#: counted with forward hooks): the summary counts only the backbone's 1280 features.
EFFICIENTNET_ACTIVATIONS = 19_634_208


def _backbone_activations(layer: dict, input_shape: Sequence[int]) -> int:
    """Values a backbone keeps per sample for the backward pass (an estimate)."""
    if layer.get("family") == "efficientnet":
        return int(EFFICIENTNET_ACTIVATIONS * input_shape[1] * input_shape[2] / 224 ** 2)
    config = layer.get("config") or {}
    hidden = int(config.get("hidden_size") or layer.get("feature_dim") or 0)
    layers = int(config.get("num_hidden_layers") or 1)
    heads = int(config.get("num_attention_heads") or 1)
    if layer.get("kind") == "text":
        tokens = int(input_shape[0])
    else:  # a vision transformer's patches (16 px unless the config says)
        patch = int(config.get("patch_size") or 16)
        tokens = (input_shape[1] // patch) * (input_shape[2] // patch) + 1
    # Per token and block: about 16 hidden-wide tensors (projections, norms, the feed-forward
    # layer's 4x width twice), and the attention's scores and weights per head.
    return layers * tokens * (16 * hidden + 2 * heads * tokens)


def trainable_params(spec: ModelSpec, config: ModelConfig, total: int) -> int:
    """Parameters that learn: all of *total* from scratch or fine-tuning; a probe's head only;
    with LoRA the head and the adapters (rank x (in + out) on each query and value)."""
    layer = spec.layers[0] if spec.layers else {}
    if layer.get("type") != "pretrained" or config.train_mode == "finetune":
        return int(total)
    head = int(total) - int(layer.get("params", 0))
    if config.train_mode == "probe":
        return head
    cfg = layer.get("config") or {}
    hidden = int(cfg.get("hidden_size") or layer.get("feature_dim") or 0)
    return head + int(cfg.get("num_hidden_layers") or 1) * 2 * config.lora_rank * 2 * hidden


def training_memory(spec: ModelSpec, config: ModelConfig, summary, batch_size: int,
                    optimizer: str = "adam") -> int:
    """Bytes training needs, as :func:`ml.models.spec.estimate_training_memory` counts them,
    with a backbone's own activations and its way of training: fine-tuning keeps everything
    (weights, gradients, optimizer state, activations), LoRA the same for the adapters but
    frozen weights without gradients or state, a probe the frozen weights and one feature
    batch's pass (no gradients; only the head trains, on cached features)."""
    from .spec import estimate_training_memory

    base = estimate_training_memory(summary, batch_size, optimizer)
    layer = spec.layers[0] if spec.layers else {}
    if layer.get("type") != "pretrained":
        return base
    acts = _backbone_activations(layer, spec.input_shape)
    slots = {"adam": 2, "adamw": 2, "sgd": 1, "rmsprop": 1}.get(optimizer, 2)
    total = int(summary.total_params)
    learning = trainable_params(spec, config, total)
    if config.train_mode == "probe":
        return int(total * 4 + learning * 4 * (1 + slots) + acts * 4 * 64 // 4)
    weights = total * 4 + learning * 4 * (1 + slots)
    return int(weights + 2 * acts * int(batch_size) * 4 + base - total * 4 * (2 + slots))
