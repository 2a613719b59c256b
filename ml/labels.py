"""The words the interface shows for settings and metrics, instead of their internal keys.

One mapping for the whole app: the compare dialog, the search results, the runs list, the
report and the command line's tables all read their labels here, so a key such as
``f1_macro`` or ``training.lr`` is never what a user reads. Plain data and small helpers
only (no imports), so every layer may use it, like :mod:`ml.errors`.
"""

from __future__ import annotations

#: metric key -> its short on-screen name.
METRIC_LABELS: dict[str, str] = {
    "accuracy": "Accuracy",
    "balanced_accuracy": "Balanced accuracy",
    "precision_macro": "Precision (average over classes)",
    "recall_macro": "Recall (average over classes)",
    "f1_macro": "F1 score (average over classes)",
    "f1_weighted": "F1 score (weighted by class size)",
    "top2_accuracy": "Right within the top 2 guesses",
    "top3_accuracy": "Right within the top 3 guesses",
    "roc_auc": "ROC AUC",
    "log_loss": "Log loss",
    "loss": "Loss",
    "mae": "MAE (average error)",
    "rmse": "RMSE",
    "r2": "R²",
    "mape": "MAPE (average error in %)",
}

#: Setting key (``section.key`` as in a run's config.json, or a search parameter) -> label.
SETTING_LABELS: dict[str, str] = {
    "data.source": "Data file",
    "data.target": "Column to predict",
    "data.task": "Task",
    "data.column_types": "Column types",
    "data.column_roles": "Column roles",
    "data.missing": "Missing values",
    "data.fill_values": "Fill values",
    "data.encodings": "Encodings",
    "data.read_options": "How the file is read",
    "data.image_size": "Image size",
    "data.image_mode": "Image colour",
    "data.image_loading": "Image loading",
    "data.augment": "Image augmentation",
    "data.text": "Text settings",
    "data.legacy_v1": "Read as TrainDesk 0.1 did",
    "data.split.val_fraction": "Validation share",
    "data.split.test_fraction": "Test share",
    "data.split.seed": "Split seed",
    "data.split.stratify": "Stratified split",
    "data.split.folds": "Cross-validation folds",
    "data.split.fold": "Fold",
    "model.preset": "Model",
    "model.hidden": "Hidden layers",
    "model.activation": "Activation",
    "model.dropout": "Dropout",
    "model.conv_channels": "Convolution channels",
    "model.batch_norm": "Batch normalisation",
    "model.rnn_cell": "Recurrent cell",
    "model.layers": "Hand-edited layers",
    "model.init_from": "Start from",
    "model.freeze_epochs": "Frozen epochs",
    "model.backbone": "Pretrained backbone",
    "model.train_mode": "How the backbone trains",
    "model.head_epochs": "Head-only epochs",
    "model.lora_rank": "LoRA rank",
    "model.ensemble": "Ensemble members",
    "training.optimizer": "Optimizer",
    "training.lr": "Learning rate",
    "training.batch_size": "Batch size",
    "training.epochs": "Epochs",
    "training.seed": "Seed",
    "training.weight_decay": "Weight decay",
    "training.momentum": "Momentum",
    "training.device": "Device",
    "training.amp": "Mixed precision",
    "training.restore_best": "Keep the best epoch",
    "training.class_weights": "Class weights",
    "training.nesterov": "Nesterov momentum",
    "training.schedule": "Learning-rate schedule",
    "training.warmup_epochs": "Warm-up epochs",
    "training.step_size": "Step every (epochs)",
    "training.step_gamma": "Step factor",
    "training.plateau_patience": "Plateau patience",
    "training.plateau_factor": "Plateau factor",
    "training.loss": "Loss",
    "training.label_smoothing": "Label smoothing",
    "training.grad_clip": "Gradient clipping",
    "training.early_stopping": "Early stopping",
    "training.patience": "Early-stopping patience",
    "training.min_delta": "Least improvement",
    "training.monitor": "Best epoch by",
    "training.oom_retry": "Retry when out of memory",
    "training.yardstick": "Compare with a classic model",
    "training.refit": "Final fit on all rows",
    # Search parameters (ml.jobs.search.PARAMETERS), which are not dotted.
    "lr": "Learning rate",
    "batch_size": "Batch size",
    "width": "Width",
    "depth": "Depth",
    "dropout": "Dropout",
    "weight_decay": "Weight decay",
    "optimizer": "Optimizer",
}

#: model (preset) name, as a run records it -> a short name for run names and lists.
MODEL_LABELS: dict[str, str] = {
    "linear": "linear model",
    "mlp_small": "small MLP",
    "mlp": "MLP",
    "mlp_large": "large MLP",
    "mlp_bn": "MLP with batch norm",
    "tabm": "TabM ensemble",
    "cnn": "small CNN",
    "vgg": "VGG-style CNN",
    "resnet": "small ResNet",
    "text": "bag of embeddings",
    "rnn": "LSTM / GRU",
    "transformer": "small Transformer",
    "custom": "custom layers",
}

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

_PREFIXES = {"val_": "Validation", "test_": "Test", "train_": "Training"}


def metric_label(key: str) -> str:
    """The on-screen name of metric *key*: ``f1_macro`` -> ``F1 score (average over
    classes)``, ``val_accuracy`` -> ``Validation accuracy``; an unknown key is made readable
    (``top5_accuracy`` -> ``Top5 accuracy``) rather than shown raw."""
    if key in METRIC_LABELS:
        return METRIC_LABELS[key]
    for prefix, word in _PREFIXES.items():
        if key.startswith(prefix) and key[len(prefix):]:
            inner = metric_label(key[len(prefix):])
            # "Validation MAE", but "Validation accuracy": only a plain word is lower-cased.
            if not (inner[:2].isupper() or inner.startswith("R²")):
                inner = inner[0].lower() + inner[1:]
            return f"{word} {inner}"
    return _readable(key)


def setting_label(key: str) -> str:
    """The on-screen name of setting *key* (``training.lr`` -> ``Learning rate``); an unknown
    key shows its last part made readable."""
    if key in SETTING_LABELS:
        return SETTING_LABELS[key]
    return _readable(key.rsplit(".", 1)[-1])


def _readable(key: str) -> str:
    words = key.replace("_", " ").strip()
    return words[:1].upper() + words[1:] if words else key


#: Pretrained backbones and their ways of training, as a run's model name holds them
#: (``efficientnet_lite0-finetune``; see ``ml.models.presets.backbone_head``).
BACKBONE_LABELS: dict[str, str] = {"efficientnet_lite0": "EfficientNet-Lite0",
                                   "minilm": "MiniLM", "pretrained": "pretrained model"}
TRAIN_MODE_LABELS: dict[str, str] = {"probe": "linear probe", "finetune": "fine-tune",
                                     "lora": "LoRA"}


def model_label(name: str, backbone: str = "") -> str:
    """The short on-screen name of model (preset) *name*: ``mlp_small`` -> ``small MLP``,
    ``minilm-lora`` -> ``MiniLM · LoRA``. A model on a local backbone folder is named
    ``pretrained-<mode>``: give its folder as *backbone* to read ``<folder name> · linear
    probe``."""
    if name in MODEL_LABELS:
        return MODEL_LABELS[name]
    head, _, mode = name.rpartition("-")
    if head in BACKBONE_LABELS and mode in TRAIN_MODE_LABELS:
        what = BACKBONE_LABELS[head]
        if head == "pretrained" and backbone:
            what = backbone.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] or what
        return f"{what} · {TRAIN_MODE_LABELS[mode]}"
    return _readable(name) if name else ""


def format_minutes(seconds: float) -> str:
    """A rough duration in words: ``40 seconds``, ``3 minutes``, ``1.5 hours``."""
    seconds = max(0.0, float(seconds))
    if seconds < 90:
        n = round(seconds / 10) * 10 if seconds >= 10 else max(1, round(seconds))
        return f"{n} second{'s' if n != 1 else ''}"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} minutes"
    return f"{seconds / 3600:.1f} hours"


def default_run_name(number: int, model: str, label: str = "", backbone: str = "") -> str:
    """The name a new run gets unless the user gives one: ``Run 3 · small MLP``, or for a
    run made with others (a fold, a trial) ``Fold 2 of 5 · small MLP``; *backbone*: see
    :func:`model_label`."""
    first = _readable(label) if label else f"Run {number}"
    what = model_label(model, backbone)
    return f"{first} · {what}" if what else first


def run_name_from_id(run_id: str, model: str = "", created: str = "") -> str:
    """A readable name for a run that has none (one written before runs had names): its
    start time (from *created*, ISO 8601, or the folder's ``YYYYMMDD-HHMMSS-`` stamp) and its
    model, e.g. ``Run of 24 Nov 09:46 · small MLP``; the folder name when neither is known."""
    stamp = _time_of(created) or _time_of_id(run_id)
    what = model_label(model)
    first = f"Run of {stamp}" if stamp else run_id
    return f"{first} · {what}" if what and stamp else first


def _time_of(iso: str) -> str:
    # "2026-11-24T09:46:08+01:00" -> "24 Nov 09:46"
    try:
        month, day = int(iso[5:7]), int(iso[8:10])
        hour, minute = int(iso[11:13]), int(iso[14:16])
    except (TypeError, ValueError):
        return ""
    if not (1 <= month <= 12 and iso[4:5] == "-" and iso[10:11] in ("T", " ")):
        return ""
    return f"{day} {_MONTHS[month - 1]} {hour:02d}:{minute:02d}"


def _time_of_id(run_id: str) -> str:
    # "20261124-094608-digits-cnn" -> "24 Nov 09:46"
    head = run_id[:15]
    if len(head) < 15 or head[8] != "-" or not (head[:8] + head[9:]).isdigit():
        return ""
    return _time_of(f"{head[:4]}-{head[4:6]}-{head[6:8]}T{head[9:11]}:{head[11:13]}")


def group_label(group: str) -> str:
    """A readable name for the folder that holds runs made together: a search's
    (``20261124-094608-iris-search`` -> ``Search of 24 Nov 09:46``) or a cross-validation's
    (``...-iris-cv5`` -> ``Cross-validation (5 folds) of 24 Nov 09:46``)."""
    if not group:
        return ""
    stamp = _time_of_id(group)
    tail = group.rsplit("-", 1)[-1]
    if tail == "search":
        what = "Search"
    elif tail.startswith("cv") and tail[2:].isdigit():
        what = f"Cross-validation ({tail[2:]} folds)"
    else:
        return run_name_from_id(group)
    return f"{what} of {stamp}" if stamp else what
