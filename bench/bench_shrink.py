"""What each way of making a model smaller trades, measured in one run (``make bench-shrink``).

Trains the digits sample with a wide MLP (256-128) and with the small CNN, then makes every
smaller version TrainDesk offers - int8 (dynamic; static too for the CNN), pruning at 50% and
80% with fine-tuning, distillation into a half-width copy - and prints file size, size in a
.zip, latency per sample (ONNX Runtime, CPU, one sample at a time) and test accuracy, each as a
ratio to the original measured in the same run.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ml.export import export_run, inputs_for_check  # noqa: E402
from ml.export.compress import compress_run, compression_inputs  # noqa: E402
from ml.export.shrink import ShrinkJob, compare_smaller  # noqa: E402
from ml.jobs.training import TrainingJob  # noqa: E402
from ml.runs.folder import load_run  # noqa: E402
from ml.runs.project import DataConfig, ModelConfig, Project, TrainingConfig  # noqa: E402


def _print(report, title: str) -> None:
    base = report.variants[0]
    print(f"\n{title}")
    print(f"{'model':<26} {'size':>9} {'zip':>9} {'ms/sample':>10} {'accuracy':>9}  "
          f"{'size':>5} {'zip':>5} {'speed':>5}")
    for v in report.variants:
        print(f"{v.name:<26} {v.size_bytes / 1024:>7.1f}KB {v.zipped_bytes / 1024:>7.1f}KB "
              f"{v.latency_ms:>10.4f} {100 * v.metric:>8.2f}%  "
              f"{v.size_bytes / base.size_bytes:>5.2f} {v.zipped_bytes / base.zipped_bytes:>5.2f} "
              f"{base.latency_ms / v.latency_ms:>5.2f}x")


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for model, epochs in (({"preset": "mlp", "hidden": [256, 128]}, 8),
                              ({"preset": "cnn"}, 6)):
            start = time.perf_counter()
            project = Project(data=DataConfig(source="sample:digits"),
                              model=ModelConfig(**model),
                              training=TrainingConfig(epochs=epochs, lr=0.003))
            teacher_dir = TrainingJob(project, runs_dir=root / "runs").run().run_dir
            teacher = load_run(teacher_dir)
            x, checked_on = inputs_for_check(teacher)
            onnx = export_run(teacher, "onnx", root / f"{teacher_dir.name}.onnx", x,
                              checked_on=checked_on)
            _print(compress_run(teacher, onnx.path, *compression_inputs(teacher)),
                   f"{teacher.spec.name} on digits: int8 quantisation")
            smaller = [load_run(ShrinkJob(teacher_dir, "prune", sparsity=s).run().run_dir)
                       for s in (0.5, 0.8)]
            smaller.append(load_run(ShrinkJob(teacher_dir, "distill", student="half")
                                    .run().run_dir))
            _print(compare_smaller(teacher, smaller),
                   f"{teacher.spec.name} on digits: pruning and distillation")
            print(f"({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
