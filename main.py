"""TrainDesk: train neural networks point-and-click, offline, on your own workstation.

    python main.py                 the desktop app
    python main.py FILE.tdproj     the desktop app, opening a project
    python main.py COMMAND ...     headless: samples, models, train, search, evaluate, compare,
                                   predict, export, shrink, gpu, generate, cluster
"""

from __future__ import annotations

import multiprocessing
import os
import sys

HEADLESS_COMMANDS = {"samples", "models", "train", "search", "evaluate", "compare", "predict",
                     "export", "shrink", "gpu", "generate", "cluster",
                     "--version",
                     "-h", "--help"}


def _has_display() -> bool:
    if os.environ.get("QT_QPA_PLATFORM"):
        return True
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def _prepare_process() -> None:
    # A windowed (no console) frozen build has no stdout/stderr; printing would crash.
    if sys.stdout is None:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115
    # Worker processes must start cleanly on every OS and inside the frozen bundle.
    try:
        multiprocessing.set_start_method("spawn")
    except RuntimeError:
        pass  # already set


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    _prepare_process()
    if argv and argv[0] == "onnx-child":  # hidden: the ONNX export's child process (frozen app)
        from ml.export.onnx_child import main as onnx_child_main

        return onnx_child_main(argv[1:])
    if argv and argv[0] == "yardstick-child":  # hidden: the classic model's child (frozen app)
        from ml.evaluation.yardstick import main as yardstick_child_main

        return yardstick_child_main(argv[1:])
    if argv and (argv[0] in HEADLESS_COMMANDS or argv[0].startswith("-")):
        from gui.report_pdf import install as install_pdf_reports  # Qt loads only for a PDF
        from ml.cli import main as cli_main

        install_pdf_reports()
        return cli_main(argv)
    if not _has_display():
        print("TrainDesk needs a display for its window and none was found; use the headless "
              "commands instead: python main.py samples | models | train | search | evaluate | "
              "compare | predict | export | shrink | generate | cluster | gpu (python main.py "
              "--help).")
        return 0
    from gui.app import run_app
    return run_app(argv)


if __name__ == "__main__":
    # In a frozen bundle, worker processes re-enter here; freeze_support() hands them over.
    multiprocessing.freeze_support()
    sys.exit(main())
