"""Ready-made networks for the data at hand: an MLP for tables, a small CNN for images."""

from __future__ import annotations

from typing import Sequence

from ..errors import ModelSpecError
from ..project import ModelConfig
from .spec import InputSpec, ModelSpec, summarize

PRESET_TITLES = {"mlp": "MLP (multi-layer perceptron)", "cnn": "Small CNN (conv-pool blocks)",
                 "text": "Text: word embeddings + MLP"}
#: Width of the word vectors of the text preset.
TEXT_EMBED_DIM = 64


def embedding_dim(cardinality: int) -> int:
    """Embedding width for a category count: fastai's rule of thumb, capped for small data."""
    return int(max(2, min(32, round(1.6 * cardinality ** 0.56))))


def default_preset(input_shape: "InputSpec | Sequence[int]") -> str:
    """The preset that suits the input: text model for token ids, CNN for images, else MLP."""
    spec = InputSpec.of(input_shape)
    if spec.kind == "text":
        return "text"
    return "cnn" if len(spec.shape) == 3 else "mlp"


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
    _, h, w = input_shape
    layers: list[dict] = []
    for ch in channels:
        layers.append({"type": "conv2d", "out_channels": int(ch), "kernel_size": 3,
                       "padding": 1, "bias": not batch_norm})
        if batch_norm:
            layers.append({"type": "batchnorm"})
        layers.append({"type": activation})
        if min(h, w) >= 4:
            layers.append({"type": "maxpool2d", "kernel_size": 2})
            h, w = h // 2, w // 2
    if h * w > 16:  # keep the head small on big images
        layers.append({"type": "adaptive_avgpool2d", "output_size": 4})
    layers.append({"type": "flatten"})
    if dropout > 0:
        layers.append({"type": "dropout", "p": float(dropout)})
    layers += mlp_layers(hidden[:1], n_outputs, activation, dropout=dropout)
    return layers


def build_spec(config: ModelConfig, input_shape: "InputSpec | Sequence[int]", n_outputs: int,
               task: str) -> ModelSpec:
    """Turn the user's model choices into a checked :class:`ModelSpec`.

    *input_shape* is the data's :class:`InputSpec` (or a bare shape for plain float input).

    Raises
    ------
    ModelSpecError
        If the choices do not fit the data (a CNN on a table, a layer that cannot take its input).
    """
    config.validate()
    spec_in = InputSpec.of(input_shape)
    shape = spec_in.shape
    preset = config.preset if config.preset != "auto" else default_preset(spec_in)
    if spec_in.kind == "text" and preset != "text":
        raise ModelSpecError("This data is text; choose the text model (word embeddings).")
    if preset == "text":
        if spec_in.kind != "text":
            raise ModelSpecError("The text model needs a text column as its feature. Choose the "
                                 "MLP for a table.")
        layers = [{"type": "embedding_bag", "vocab_size": int(spec_in.vocab_size),
                   "dim": TEXT_EMBED_DIM}]
        layers += mlp_layers(config.hidden, n_outputs, config.activation, config.dropout)
    elif preset == "cnn":
        layers = cnn_layers(shape, config.conv_channels, config.hidden, n_outputs,
                            config.activation, config.dropout, config.batch_norm)
    else:
        layers = []
        if spec_in.embeddings:
            layers.append({"type": "embed_columns",
                           "columns": [[int(pos), int(card), embedding_dim(card)]
                                       for pos, card in spec_in.embeddings]})
        layers += mlp_layers(config.hidden, n_outputs, config.activation, config.dropout,
                             batch_norm=False, flatten=len(shape) > 1)
    spec = ModelSpec(input_shape=list(shape), layers=layers, task=task, name=preset,
                     input_dtype=spec_in.dtype)
    summarize(spec)
    return spec


def suggest_settings(n_train: int, input_shape: "InputSpec | Sequence[int]") -> tuple[ModelConfig, dict]:
    """A sensible model and training schedule for *n_train* rows of inputs shaped *input_shape*.

    Small tables get a small, regularised MLP and many epochs (few steps per epoch); images get
    the CNN; big data gets wider layers, bigger batches and fewer epochs. Returns the model config
    and a dict of :class:`~ml.project.TrainingConfig` fields (``batch_size``, ``epochs``).
    """
    def epochs_for(target_steps: int, batch: int, lo: int, hi: int) -> int:
        steps = max(1, -(-n_train // batch))
        return int(min(hi, max(lo, round(target_steps / steps))))

    spec_in = InputSpec.of(input_shape)
    input_shape = spec_in.shape
    if spec_in.kind == "text":
        batch = 32 if n_train < 2000 else 64 if n_train < 50_000 else 256
        model = ModelConfig(preset="text", hidden=[64], dropout=0.2)
        return model, {"batch_size": batch, "epochs": epochs_for(1500, batch, 5, 40)}
    if len(input_shape) == 3:
        batch = 32 if n_train < 2000 else 64 if n_train < 50_000 else 128
        model = ModelConfig(preset="cnn", hidden=[128], conv_channels=[32, 64], dropout=0.25,
                            batch_norm=True)
        return model, {"batch_size": batch, "epochs": epochs_for(1500, batch, 5, 60)}
    if n_train < 1000:
        model = ModelConfig(preset="mlp", hidden=[64, 32], dropout=0.2)
        return model, {"batch_size": 32, "epochs": epochs_for(1500, 32, 20, 200)}
    if n_train < 20_000:
        model = ModelConfig(preset="mlp", hidden=[128, 64], dropout=0.1)
        return model, {"batch_size": 64, "epochs": epochs_for(3000, 64, 10, 100)}
    model = ModelConfig(preset="mlp", hidden=[256, 128], dropout=0.1)
    return model, {"batch_size": 256, "epochs": epochs_for(5000, 256, 5, 30)}
