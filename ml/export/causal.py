"""What a fine-tuned causal LM is exported as: its LoRA adapter in peft's format, or a merged
model folder (safetensors, config, tokenizer) that ``AutoModelForCausalLM.from_pretrained``
loads - checked on write: the folder is loaded back and must give the same logits.

Each folder is written beside its destination under a temporary name and moved into place only
when whole (and checked), so a failed or interrupted export leaves nothing half-written.
"""

from __future__ import annotations

import os
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

from ..errors import ExportError
from ..system.fileio import folder_beside

#: The largest difference of logits a reloaded merged model may show (float32 rounding).
LOGITS_TOLERANCE = 1e-4


def _into_place(out: Path, write: Callable[[Path], None]) -> Path:
    """Run *write* on a fresh folder beside *out*, then move it to *out* (which must not hold
    anything yet)."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise ExportError(f"{out} is not empty; choose a new folder for the export.")
    try:
        tmp = folder_beside(out)
    except OSError as exc:
        raise ExportError(f"Cannot write in {out.parent}: {exc.strerror or exc}.") from None
    try:
        write(tmp)
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    except OSError as exc:
        raise ExportError(f"The export to {out} could not be written ({exc.strerror or exc})."
                          ) from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def save_adapter(model, out: str | os.PathLike) -> Path:
    """The LoRA adapter of *model* (a peft model): ``adapter_config.json`` and
    ``adapter_model.safetensors``, loadable with ``PeftModel.from_pretrained``."""
    if not hasattr(model, "peft_config"):
        raise ExportError("This run fine-tuned every weight, so it has no LoRA adapter; "
                          "export the merged model instead (--format hf).")
    def write(tmp: Path) -> None:
        with warnings.catch_warnings():  # as in save_merged
            warnings.simplefilter("ignore", FutureWarning)
            model.save_pretrained(str(tmp), safe_serialization=True)

    return _into_place(Path(out), write)


@torch.no_grad()
def save_merged(model, tokenizer, out: str | os.PathLike, check_ids: torch.Tensor) -> float:
    """A model folder with the adapters merged into the weights (or the fully fine-tuned
    weights), and the tokenizer; returns the largest logit difference of the reloaded folder
    on *check_ids*. A LoRA *model* is merged in place.

    Raises
    ------
    ExportError
        When the reloaded folder's logits differ by more than :data:`LOGITS_TOLERANCE`.
    """
    from transformers import AutoModelForCausalLM

    with warnings.catch_warnings():  # peft asks transformers about deprecated properties
        warnings.simplefilter("ignore", FutureWarning)
        merged = model.merge_and_unload() if hasattr(model, "merge_and_unload") else model
    merged.eval()
    expected = merged(input_ids=check_ids).logits
    found: list[float] = []

    def write(tmp: Path) -> None:
        merged.save_pretrained(str(tmp), safe_serialization=True)
        tokenizer.save_pretrained(str(tmp))
        again = AutoModelForCausalLM.from_pretrained(str(tmp), local_files_only=True,
                                                     trust_remote_code=False,
                                                     use_safetensors=True, dtype=torch.float32)
        found.append(float((again.eval()(input_ids=check_ids).logits - expected).abs().max()))
        if found[0] > LOGITS_TOLERANCE:
            raise ExportError(f"The merged model, loaded back, gives other answers (logits "
                              f"differ by up to {found[0]:.2g}); nothing was written.")

    _into_place(Path(out), write)
    return found[0]
