"""The ONNX export and its check, in a child process.

Importing ``onnx`` (through ``ml_dtypes``, whose C extension registers its dtypes in one call)
holds the GIL for about 0.6 s: an export on one of the app's worker threads froze the window that
long (measured in docs/benchmarks.md). So, on a worker thread (:func:`wanted`),
:func:`export_onnx_in_child` hands the model over (its
weights as safetensors and how to rebuild it as JSON; any other module as a ``torch.export``
program, slower) and a child process converts it to ONNX, loads the file in onnxruntime, runs the
check inputs through it and says how it went; the parent only compares the outputs with the
model's own.

The child is ``python -m ml.export.onnx_child`` or, in the frozen bundle, where ``sys.executable``
is the app itself, the hidden ``main.py onnx-child`` command. Its result is one JSON object, both
on stdout and in a file (a windowed build has no stdout to read).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from ..errors import ExportError
from ..system import child
from ..system.fileio import atomic_write_json
from ..system.jobcontrol import ShouldStop, check_stop

#: The hidden command of ``main.py`` that runs :func:`main` (for the frozen bundle).
COMMAND = "onnx-child"
#: How often the parent looks at the stop flag while the child works (seconds).
POLL_S = 0.1
_STOPPED = "The export was stopped; no file was written."


def wanted() -> bool:
    """Whether an ONNX export here should go to a child process: yes on a worker thread, where
    a thread beside it (the app's window) waits for the GIL; no on the main thread (the headless
    commands), where nothing waits and converting in-process saves the child's 2-3 s of
    importing torch and onnx again."""
    return threading.current_thread() is not threading.main_thread()


def export_onnx_in_child(model, x: np.ndarray, out: Path, description: dict,
                         should_stop: ShouldStop | None = None) -> np.ndarray:
    """Write *model* as ONNX to *out* and return what onnxruntime makes of *x* with that file.

    Raises
    ------
    ExportError
        If the model cannot be handed over, the conversion fails, or the written file does not
        run (the message says which, in the words :func:`ml.export.exporters.export_run` uses).
    Cancelled
        When *should_stop* returns True; the child is ended and *out* is left as it was.
    """
    with tempfile.TemporaryDirectory(prefix="traindesk-onnx-") as folder:
        work = Path(folder)
        try:
            _hand_over(model, x, work, description)
        except Exception as exc:  # noqa: BLE001 - torch.export raises many kinds
            raise ExportError(f"The ONNX export failed: {exc}") from exc
        result = _run_child(work, should_stop)
        if not result.get("ok"):
            raise ExportError(_failure(result))
        shutil.copyfile(work / "model.onnx", out)
        return np.load(work / "outputs.npy")


def _recipe(model) -> dict | None:
    """How the child rebuilds *model* from its weights, or None for a module of another kind."""
    from ..evaluation.ensemble import EnsembleModel
    from ..models.spec import InferenceModel

    if isinstance(model, InferenceModel):
        return {"task": model.task, "specs": [model.net.spec.to_dict()], "ensemble": False}
    if isinstance(model, EnsembleModel) and all(isinstance(m, InferenceModel)
                                                for m in model.members):
        return {"task": model.task, "specs": [m.net.spec.to_dict() for m in model.members],
                "ensemble": True}
    return None


def _hand_over(model, x: np.ndarray, work: Path, description: dict) -> None:
    """Write what the child needs into *work*: the model, the check inputs, the description."""
    recipe = _recipe(model)
    if recipe is None:  # tracing here is slower, but any module survives it
        from .exporters import _write_pt2

        _write_pt2(model, x, work / "model.pt2", description)
    else:
        from safetensors.torch import save_file

        # Copies: safetensors refuses tensors that share memory.
        save_file({k: v.detach().cpu().contiguous().clone()
                   for k, v in model.state_dict().items()}, str(work / "model.safetensors"))
        atomic_write_json(work / "recipe.json", recipe, error=ExportError)
    np.save(work / "inputs.npy", x)
    atomic_write_json(work / "description.json", description, error=ExportError)


def _failure(result: dict) -> str:
    error = result.get("error", "the check process gave no answer")
    if result.get("plain"):  # already a sentence for the user (a TrainDeskError in the child)
        return error
    if result.get("stage") == "run":
        return f"The written ONNX file could not be run: {error}"
    return f"The ONNX export failed: {error}"


def child_command(work: Path) -> list[str]:
    """How to start the child on this install: the app itself when frozen, else this module."""
    return child.child_command(__name__, COMMAND, work)


def _run_child(work: Path, should_stop: ShouldStop | None) -> dict:
    """Start the child on *work*, end it if the export is stopped, and return its result."""
    try:
        process = child.start_child(__name__, COMMAND, work)
    except OSError as exc:
        raise ExportError(f"The ONNX export could not start its check process: {exc}") from exc
    while True:
        try:
            _, err = process.communicate(timeout=POLL_S)
            break
        except subprocess.TimeoutExpired:
            if should_stop is not None and should_stop():
                process.kill()
                process.communicate()
                check_stop(should_stop, _STOPPED)
    try:
        return json.loads((work / "result.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        tail = err.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no message"]
        return {"ok": False, "stage": "write",
                "error": f"the check process ended with code {process.returncode} ({tail[0]})"}


# -- the child ----------------------------------------------------------------------------------
def _rebuild(work: Path):
    """The module the parent handed over in *work*."""
    import torch

    if not (work / "recipe.json").exists():
        return torch.export.load(str(work / "model.pt2")).module()
    from safetensors.torch import load_file

    from ..models.spec import InferenceModel, ModelSpec, build_model

    recipe = json.loads((work / "recipe.json").read_text(encoding="utf-8"))
    members = [InferenceModel(build_model(ModelSpec.from_dict(spec)), recipe["task"])
               for spec in recipe["specs"]]
    if recipe["ensemble"]:
        from ..evaluation.ensemble import EnsembleModel

        model = EnsembleModel(members)
    else:
        model = members[0]
    # strict: every weight and buffer (the target scaling too) must come back
    model.load_state_dict(load_file(str(work / "model.safetensors")), strict=True)
    return model.eval()


def _export_and_run(work: Path) -> dict:
    from ..errors import TrainDeskError
    from .exporters import _run_onnx, _write_onnx

    x = np.load(work / "inputs.npy")
    description = json.loads((work / "description.json").read_text(encoding="utf-8"))
    try:
        _write_onnx(_rebuild(work), x, work / "model.onnx", description)
    except TrainDeskError as exc:
        return {"ok": False, "stage": "write", "error": str(exc), "plain": True}
    except Exception as exc:  # noqa: BLE001 - the exporter's internals raise many kinds
        return {"ok": False, "stage": "write", "error": str(exc)}
    try:
        started = time.perf_counter()
        np.save(work / "outputs.npy", _run_onnx(work / "model.onnx", x))
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own kinds
        return {"ok": False, "stage": "run", "error": str(exc)}
    return {"ok": True, "n": len(x), "check_s": round(time.perf_counter() - started, 3)}


def main(argv: list[str]) -> int:
    """The child: ``WORK`` holds the model (``model.safetensors`` and ``recipe.json``, or
    ``model.pt2``), ``inputs.npy`` and ``description.json``; it gets
    ``model.onnx``, ``outputs.npy`` and ``result.json`` (also printed). Exit code 0 when the
    export was written and ran."""
    if len(argv) != 1 or not Path(argv[0]).is_dir():
        print(json.dumps({"ok": False, "stage": "write",
                          "error": "usage: onnx-child WORK_FOLDER"}))
        return 2
    work = Path(argv[0])
    result = _export_and_run(work)
    atomic_write_json(work / "result.json", result)
    print(json.dumps(result), flush=True)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
