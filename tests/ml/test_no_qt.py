"""ml/ is a library: it must import and work with Qt blocked."""

import subprocess
import sys

from tests.conftest import ROOT

SCRIPT = r"""
import importlib.abc, sys

class BlockQt(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in {"PySide6", "shiboken6", "pyqtgraph", "PyQt5", "PyQt6"}:
            raise ImportError(f"ml imported {name}")
        return None

sys.meta_path.insert(0, BlockQt())
import ml, ml.cli, ml.data, ml.evaluation, ml.export, ml.models, ml.jobs.training, ml.runs.project
import ml.runs.folder, ml.training
from ml.runs.project import Project, DataConfig, TrainingConfig
from ml.jobs.training import TrainingJob
result = TrainingJob(Project(data=DataConfig(source="sample:iris"),
                             training=TrainingConfig(epochs=1))).run()
assert result.status == "finished"
bad = [m for m in sys.modules if m.split(".")[0] in {"PySide6", "shiboken6", "pyqtgraph"}]
assert not bad, bad
print("ok")
"""


def test_ml_imports_and_trains_without_qt(tmp_path):
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          cwd=str(ROOT), timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("ok")
