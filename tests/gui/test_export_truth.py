"""The Export step keeps the window live during an ONNX export, and says what its code feeds.

Issue 19, finding 15: an ONNX export froze the window for 0.55-0.65 s (importing ``onnx`` holds
the GIL); and "Copy as code" fed encoded numbers while the note said raw values could be fed.
"""

from __future__ import annotations

import gc
import sys

import numpy as np
from PySide6.QtCore import Qt

from gui.app import keep_gui_responsive
from gui.stall_probe import StallProbe
from ml.runs.folder import load_run
from tests.gui.test_export_extras import _train_iris


def _export(qtbot, export, user):
    export.last_report = None
    qtbot.mouseClick(export.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: export.last_report is not None or bool(user.errors),
                    timeout=300_000)
    assert user.errors == []


def test_the_window_stays_live_while_an_onnx_export_is_written_and_checked(qtbot, window, user,
                                                                           tmp_path,
                                                                           monkeypatch):
    _train_iris(qtbot, window, epochs=2)
    export = window.export_page
    export.set_format("onnx")
    export.path_edit.setText(str(tmp_path / "iris.onnx"))
    # Nothing of ONNX may run in the app's process: it would hold the GIL the window needs.
    for name in ("onnx", "onnxruntime", "onnxscript", "ml_dtypes"):
        monkeypatch.setitem(sys.modules, name, None)
    switch = sys.getswitchinterval()
    keep_gui_responsive()  # as run_app does
    probe = StallProbe(10)
    probe.start()
    try:
        _export(qtbot, export, user)
    finally:
        probe.stop()
        sys.setswitchinterval(switch)
        gc.unfreeze()
    print(f"GUI during an ONNX export: {len(probe.gaps_ms)} ticks, longest gap "
          f"{probe.worst_ms:.0f} ms, 99th percentile {probe.percentile_ms(99):.0f} ms")
    assert export.last_report.identical == export.last_report.n
    assert (tmp_path / "iris.onnx").exists()
    # Before: 543-614 ms on the first export (2,257 ms on a loaded machine). The 250 ms of the
    # GUI soak test in make test: a frozen window, with room for a busy machine.
    assert probe.worst_ms < 250, probe.worst_ms


def test_copy_as_code_feeds_exactly_what_the_onnx_model_takes_and_the_note_says_so(
        qtbot, window, user, tmp_path):
    run = _train_iris(qtbot, window, epochs=2)
    export = window.export_page
    export.set_format("onnx")
    export.path_edit.setText(str(tmp_path / "iris.onnx"))
    _export(qtbot, export, user)
    code = export.code_view.toPlainText()
    assert "ENCODED values, not raw ones" in code and "Standalone package" in code
    namespace: dict = {}
    exec(compile(code, "snippet", "exec"), namespace)  # prints the class, as pasted code would
    example = load_run(run.path).check_inputs()[:1]
    np.testing.assert_array_equal(namespace["x"], example)  # the exact encoded input
    import onnxruntime as ort

    session = ort.InferenceSession(str(tmp_path / "iris.onnx"))
    np.testing.assert_allclose(namespace["probabilities"],
                               session.run(None, {"input": example})[0], rtol=1e-6)
    note = export.findChild(type(export.run_label), "exportNote").text()
    assert "raw values can be fed" not in note  # it cannot: the model takes encoded values
    assert "<b>encoded</b>" in note and "Standalone package" in note
