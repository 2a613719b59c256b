"""The model library: the pretrained backbones TrainDesk can start from, and the local model
folders the user added.

The two built-in backbones (:data:`~ml.models.backbones.EFFICIENTNET`,
:data:`~ml.models.backbones.MINILM`) are always listed. The folders the user added are kept in
one small JSON file, ``models.json`` in the TrainDesk home, owned by this module (the app and
the command line both read and write it through :func:`add_folder` and :func:`remove_folder`):

.. code-block:: json

    {"format": "traindesk-model-library", "version": 1, "folders": ["/abs/path/to/model"]}

Whether a folder is a usable model is decided by :func:`ml.models.backbones.inspect_folder`
alone; this module only remembers the folders and describes each one (:class:`ModelEntry`),
including whether fine-tuning it fits in this computer's free memory.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import ModelSpecError
from ..system.fileio import atomic_write_json
from ..system.resources import traindesk_home
from . import backbones, causal_lm
from .backbones import Backbone

LIBRARY_FORMAT = "traindesk-model-library"
LIBRARY_VERSION = 1
#: The batch the memory estimate assumes (a backbone's usual fine-tuning batch).
ESTIMATE_BATCH = 32
#: Weights, their gradients and Adam's two moments, in float32.
BYTES_PER_PARAM = 16
#: Activations kept for the backward pass, per sample, measured with a saved-tensor hook on the
#: built-in backbones in training mode: EfficientNet-Lite0 keeps 86 MB per 224 x 224 image
#: (about 1720 bytes per pixel, used for every convolutional network), MiniLM-L6 60 MB per
#: 128-word-piece text (about 200 bytes per word piece, unit of width and layer, used for
#: every transformer, text or image).
CNN_BYTES_PER_PIXEL = 1720
TRANSFORMER_BYTES_PER_VALUE = 200
#: Up to this share of the free memory "fits"; up to all of it is "tight".
FITS_SHARE = 0.6
#: A causal language model's kind in the library, and the batch and context its LoRA memory
#: is estimated at (the Model step of a language-model project measures the chosen ones).
LM_KIND, LM_ESTIMATE_BATCH, LM_ESTIMATE_CONTEXT = "language model", 4, 512
#: The backbones that ship with TrainDesk, listed first.
BUILTIN_KEYS = (backbones.EFFICIENTNET, backbones.MINILM)


@dataclass(frozen=True)
class ModelEntry:
    """One row of the model library.

    Attributes
    ----------
    key : str
        What ``train --backbone`` takes (``efficientnet_lite0``, ``minilm`` or the folder).
    name : str
        The model's title (a folder's name).
    fit : str
        ``fits``, ``tight`` or ``too big`` (training memory against the free memory), or ``""``
        when the entry cannot be used; ``fit_text`` says it with the numbers.
    error : str
        Why an added folder cannot be used any more (moved, changed); ``""`` when it can.
    """

    key: str
    name: str
    kind: str = ""
    architecture: str = ""
    params: int = 0
    disk_bytes: int = 0
    input_size: str = ""
    license: str = ""
    source: str = ""
    builtin: bool = False
    memory_bytes: int = 0
    available_bytes: int = 0
    fit: str = ""
    fit_text: str = ""
    error: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- the file ------------------------------------------------------------------------------------
def library_path() -> Path:
    """``models.json`` in the TrainDesk home."""
    return traindesk_home() / "models.json"


def added_folders() -> list[str]:
    """The folders the user added, in the order added.

    Raises
    ------
    ModelSpecError
        The file cannot be read, or a newer TrainDesk wrote it.
    """
    path = library_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise ModelSpecError(f"The model library {path} cannot be read "
                             f"({exc.strerror or exc}).") from None
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    if not isinstance(doc, dict) or doc.get("format") != LIBRARY_FORMAT:
        raise ModelSpecError(f"{path} is not a TrainDesk model library; delete it and add your "
                             f"model folders again.")
    version = doc.get("version")
    if not isinstance(version, int) or version > LIBRARY_VERSION:
        raise ModelSpecError(f"The model library {path} was written by a newer TrainDesk "
                             f"(version {version}); update TrainDesk to read it.")
    folders = doc.get("folders")
    return [str(f) for f in folders if isinstance(f, str)] if isinstance(folders, list) else []


def _save(folders: list[str]) -> None:
    atomic_write_json(library_path(), {"format": LIBRARY_FORMAT, "version": LIBRARY_VERSION,
                                       "folders": folders}, error=ModelSpecError)


def _normal(path: str) -> str:
    return str(Path(path).expanduser().resolve())


def add_folder(path: str) -> ModelEntry:
    """Check the model folder *path* and remember it; return its entry (adding one twice keeps
    one).

    Raises
    ------
    ModelSpecError
        The folder is not a model TrainDesk can use (the message says why and what to do).
    """
    folder = Path(path).expanduser().resolve()
    entry = _describe_key(str(folder), available_memory(), added=True)
    folders = added_folders()
    if entry.key not in {_normal(f) for f in folders}:
        _save(folders + [entry.key])
    return entry


def remove_folder(path: str) -> str:
    """Forget the added folder *path* (its files stay where they are); return it.

    Raises
    ------
    ModelSpecError
        *path* is a built-in backbone or was not added.
    """
    if path in BUILTIN_KEYS:
        raise ModelSpecError(f"{path} is built into TrainDesk and cannot be removed.")
    folders = added_folders()
    wanted = _normal(path)
    kept = [f for f in folders if f != path and _normal(f) != wanted]
    if len(kept) == len(folders):
        raise ModelSpecError(f"{path} is not in the model library; `main.py models` lists "
                             f"what is.")
    _save(kept)
    return next(f for f in folders if f not in kept)


# -- the entries ---------------------------------------------------------------------------------
def entries() -> list[ModelEntry]:
    """The built-in backbones, then every added folder (one that no longer loads says why).

    Raises
    ------
    ModelSpecError
        The library file cannot be read.
    """
    return _entries(list(BUILTIN_KEYS) + added_folders())


def builtin_entries() -> list[ModelEntry]:
    """The built-in backbones only (what is left when the library file cannot be read)."""
    return _entries(list(BUILTIN_KEYS))


def _entries(keys: list[str]) -> list[ModelEntry]:
    free = available_memory()
    rows = []
    for key in keys:
        try:
            rows.append(_describe_key(key, free))
        except ModelSpecError as exc:  # an added folder moved away, a package missing
            rows.append(ModelEntry(key=key, name=Path(key).name or key,
                                   builtin=key in BUILTIN_KEYS, error=str(exc)))
    return rows


def _describe_key(key: str, free: int, added: bool = False) -> ModelEntry:
    """The entry of built-in backbone or folder *key*: a causal language model's folder is
    described as one (for language-model projects), any other as a backbone."""
    folder = Path(key)
    if key not in BUILTIN_KEYS and causal_lm.is_causal_folder(folder):
        return describe_language_model(causal_lm.inspect_causal_lm(folder), free)
    return describe(backbones.inspect_folder(folder) if added else backbones.resolve(key), free)


def describe_language_model(model: causal_lm.CausalLM, available: int) -> ModelEntry:
    """The library row of a causal language model: its LoRA training memory at
    :data:`LM_ESTIMATE_BATCH` examples of :data:`LM_ESTIMATE_CONTEXT` tokens."""
    context = min(LM_ESTIMATE_CONTEXT, model.context or LM_ESTIMATE_CONTEXT)
    need = causal_lm.memory_needed(model, "lora", LM_ESTIMATE_BATCH, context)
    fit, _ = memory_fit(need, available)
    text = (f"{fit + ': ' if fit else ''}about {format_bytes(need)} for LoRA (batch of "
            f"{LM_ESTIMATE_BATCH}, {context} tokens)" + (f", {format_bytes(available)} free"
                                                         if available > 0 else ""))
    files = [p for p in model.path.rglob("*") if p.is_file()]
    return ModelEntry(key=str(model.path), name=model.name, kind=LM_KIND,
                      architecture=model.architecture, params=model.params,
                      disk_bytes=sum(p.stat().st_size for p in files),
                      input_size=f"{model.context:,} tokens", license=backbones.license_of(
                          model.path), source=str(model.path), memory_bytes=need,
                      available_bytes=available, fit=fit, fit_text=text)


def describe(backbone: Backbone, available: int | None = None) -> ModelEntry:
    """The library row of *backbone*; *available*: free memory in bytes (default: now)."""
    free = available_memory() if available is None else int(available)
    need = training_memory(backbone)
    fit, fit_text = memory_fit(need, free)
    if backbone.kind == "image":
        size = f"{backbone.image_size} px"
    else:
        size = f"{backbone.max_length} word pieces"
    return ModelEntry(key=backbone.key, name=backbone.title, kind=backbone.kind,
                      architecture=backbone.model_type, params=backbone.params,
                      disk_bytes=backbone.disk_bytes, input_size=size,
                      license=backbone.license, source=backbone.source,
                      builtin=backbone.builtin, memory_bytes=need, available_bytes=free,
                      fit=fit, fit_text=fit_text)


def training_memory(backbone: Backbone, batch_size: int = ESTIMATE_BATCH) -> int:
    """Bytes fine-tuning *backbone* with Adam roughly needs: 16 per weight and the activations
    of a batch (see :data:`CNN_BYTES_PER_PIXEL`)."""
    if backbone.kind == "text":
        tokens = backbone.max_length
    elif backbone.transformer:
        patch = int(backbone.config.get("patch_size") or 16)
        tokens = (backbone.image_size // max(patch, 1)) ** 2 + 1
    else:
        tokens = 0
    if tokens:
        layers = int(backbone.config.get("num_hidden_layers") or 12)
        per_sample = TRANSFORMER_BYTES_PER_VALUE * tokens * backbone.feature_dim * layers
    else:
        per_sample = CNN_BYTES_PER_PIXEL * backbone.image_size ** 2
    return int(backbone.params * BYTES_PER_PARAM + per_sample * int(batch_size))


def memory_fit(need: int, available: int) -> tuple[str, str]:
    """``("fits" | "tight" | "too big", the sentence with the numbers)``."""
    if available <= 0:
        return "", f"needs about {format_bytes(need)} to fine-tune (free memory unknown)"
    if need <= FITS_SHARE * available:
        word = "fits"
    elif need <= available:
        word = "tight"
    else:
        word = "too big"
    return word, (f"{word}: about {format_bytes(need)} to fine-tune (batch of "
                  f"{ESTIMATE_BATCH}), {format_bytes(available)} free")


def available_memory() -> int:
    """Bytes of memory free now (0 when it cannot be read)."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except Exception:  # noqa: BLE001 - no psutil or no /proc: the fit is then unknown
        return 0


def format_bytes(n: float) -> str:
    """``1234567`` -> ``"1.2 MB"`` (powers of 1000, as the app shows sizes)."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def format_count(n: float) -> str:
    """``22713728`` -> ``"22.7M"``."""
    for unit in ("", "K", "M", "G"):
        if n < 1000 or unit == "G":
            return f"{n:.0f}" if not unit else f"{n:.1f}{unit}"
        n /= 1000
    raise AssertionError("unreachable")


def shipped_models() -> list[dict[str, str]]:
    """The pretrained models that ship with TrainDesk, for the About box and licences: name,
    licence, source, weights file and its pinned sha256 (a missing package says so)."""
    pinned = {backbones.EFFICIENTNET: backbones.EFFICIENTNET_SHA256,
              backbones.MINILM: backbones.MINILM_SHA256}
    rows = []
    for key in BUILTIN_KEYS:
        try:
            info = backbones.resolve(key)
        except ModelSpecError as exc:
            rows.append({"key": key, "name": key, "license": "", "source": str(exc),
                         "file": "", "sha256": pinned[key]})
            continue
        rows.append({"key": key, "name": info.title, "license": info.license,
                     "source": info.source, "file": Path(info.weights[0]).name,
                     "sha256": info.sha256})
    return rows
