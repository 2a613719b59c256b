"""The ONNX export and its check run in a child process when they run beside a GUI thread.

Importing ``onnx`` held the GIL for 0.55-0.65 s, freezing the window during an export from the
app (issue 19, finding 15). Each test here makes ``onnx`` and ``onnxruntime`` unimportable in
this process: an export that still works was converted and checked elsewhere.
"""

from __future__ import annotations

import json
import sys
import threading
import time

import numpy as np
import pytest

from ml.errors import Cancelled, ExportError
from ml.evaluation.ensemble import Ensemble
from ml.export import export_ensemble, export_run, inputs_for_check, onnx_child
from ml.export.exporters import inference_model
from ml.jobs.training import TrainingJob
from ml.runs.folder import load_run
from ml.runs.project import DataConfig, ModelConfig, Project, TrainingConfig
from ml.system.jobcontrol import CancelToken
from tests.conftest import ROOT


def _train(root, name, hidden, preset="mlp", sample="iris"):
    project = Project(data=DataConfig(source=f"sample:{sample}"),
                      model=ModelConfig(preset=preset, hidden=list(hidden)),
                      training=TrainingConfig(epochs=2, batch_size=16))
    return load_run(TrainingJob(project, run_dir=root / name).run().run_dir)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("child")
    return [_train(root, "a", (16,)), _train(root, "b", (8, 8))]


@pytest.fixture
def no_onnx_here(monkeypatch):
    """``import onnx`` / ``import onnxruntime`` fail in this process from now on."""
    for name in ("onnx", "onnxruntime", "onnxscript", "ml_dtypes"):
        monkeypatch.setitem(sys.modules, name, None)


def _on_a_worker_thread(fn, *args, **kwargs):
    """Call *fn* on another thread, as the app's workers do; return or raise what it did."""
    box = {}

    def target():
        try:
            box["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            box["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(300)
    if "error" in box:
        raise box["error"]
    return box["value"]


def test_an_export_on_a_worker_thread_is_converted_and_checked_in_a_child(runs, tmp_path,
                                                                          no_onnx_here):
    run = runs[0]
    x, checked_on = inputs_for_check(run)
    report = _on_a_worker_thread(export_run, run, "onnx", tmp_path / "m.onnx", x,
                                 checked_on=checked_on)
    assert report.identical == report.n == len(x)
    assert report.path.stat().st_size > 1000 and report.sidecar.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "m.preprocessing.json"]


def test_the_child_rebuilds_an_ensemble_and_its_file_predicts_like_it(runs, tmp_path,
                                                                      monkeypatch):
    x, checked_on = inputs_for_check(runs[0])
    out = tmp_path / "ens.onnx"
    with monkeypatch.context() as m:
        for name in ("onnx", "onnxruntime", "onnxscript", "ml_dtypes"):
            m.setitem(sys.modules, name, None)
        report = _on_a_worker_thread(export_ensemble, Ensemble(runs), "onnx", out, x,
                                     checked_on=checked_on)
    assert report.identical == report.n
    import onnxruntime as ort
    import torch

    expected = Ensemble(runs).inference_model()(torch.from_numpy(x[:5])).detach().numpy()
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"input": x[:5]})[0], expected, atol=1e-5)


def test_stopping_ends_the_child_and_keeps_no_file(runs, tmp_path, no_onnx_here):
    run = runs[0]
    x, _ = inputs_for_check(run)
    token = CancelToken()
    threading.Timer(0.5, token.cancel).start()  # while the child is importing torch
    started = time.monotonic()
    with pytest.raises(Cancelled, match="no file was written"):
        _on_a_worker_thread(export_run, run, "onnx", tmp_path / "m.onnx", x, should_stop=token)
    assert time.monotonic() - started < 5  # not the whole export
    assert list(tmp_path.iterdir()) == []


def test_a_child_that_fails_says_so_in_one_sentence(runs, tmp_path, monkeypatch):
    run = runs[0]
    x, _ = inputs_for_check(run)
    target = tmp_path / "m.onnx"
    target.write_bytes(b"the old export")

    def broken(model, x, work, description):
        (work / "description.json").write_text("{}")  # no inputs, no model: the child fails

    monkeypatch.setattr(onnx_child, "_hand_over", broken)
    with pytest.raises(ExportError, match=r"^The ONNX export failed: .+") as caught:
        _on_a_worker_thread(export_run, run, "onnx", target, x)
    assert "Traceback" not in str(caught.value)
    assert target.read_bytes() == b"the old export"


def test_the_hidden_main_py_command_runs_the_child_as_the_frozen_app_does(runs, tmp_path,
                                                                          monkeypatch):
    run = runs[0]
    x, _ = inputs_for_check(run)
    onnx_child._hand_over(inference_model(run), x, tmp_path, {"output": {}})
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    command = onnx_child.child_command(tmp_path)
    assert command == [sys.executable, "onnx-child", str(tmp_path)]
    import subprocess

    done = subprocess.run([sys.executable, str(ROOT / "main.py"), *command[1:]],
                          capture_output=True, text=True, timeout=300, cwd=str(ROOT))
    assert done.returncode == 0, done.stderr[-2000:]
    said = json.loads(done.stdout.strip().splitlines()[-1])
    assert said["ok"] and said["n"] == len(x)
    assert json.loads((tmp_path / "result.json").read_text()) == said
    assert np.load(tmp_path / "outputs.npy").shape == (len(x), 3)


def test_on_the_main_thread_the_export_stays_in_this_process(runs, tmp_path, monkeypatch):
    """The headless commands: nothing waits for the GIL, and a child would cost 2-3 s."""
    monkeypatch.setattr(onnx_child, "export_onnx_in_child",
                        lambda *a, **k: pytest.fail("a child process was started"))
    x, _ = inputs_for_check(runs[0])
    report = export_run(runs[0], "onnx", tmp_path / "m.onnx", x)
    assert report.identical == report.n
