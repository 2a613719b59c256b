"""The headless commands: ``python main.py samples | train | search | evaluate | compare |
predict | export``.

Progress goes to stderr, results to stdout. Bad input ends with one readable line on stderr and
exit status 2; an internal error with one line and status 1 (``TRAINDESK_DEBUG=1`` adds the
traceback). Ctrl+C during training stops after the current batch and keeps the run.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from . import cli_lm
from .errors import Cancelled, TrainDeskError
from .runs.project import LOSSES, OPTIMIZERS, PRESETS, SCHEDULES
from .training.callbacks import Callback

EXIT_OK, EXIT_INTERNAL, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
#: The signals a scheduler stops a job with (SLURM sends SIGUSR1 before a time limit, then
#: SIGTERM; Kubernetes and torchrun's agent SIGTERM): the run is saved and the command exits
#: with 128 + the signal, so the job script or agent sees an interrupted run, not a finished one.
PREEMPT_SIGNALS = ("SIGTERM", "SIGUSR1")


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage mistake as one line."""

    def error(self, message: str):  # noqa: D401 - argparse's API
        self.exit(EXIT_BAD_INPUT, f"error: {message} (see '{self.prog} --help')\n")


def _add_mlflow_arg(p, what: str) -> None:
    p.add_argument("--mlflow", nargs="?", const="", default=None, metavar="URI",
                   help=f"log {what} to an MLflow tracking store: by default a local SQLite "
                        f"file in the TrainDesk home; nothing leaves this machine unless URI "
                        f"is a remote server")


def _err(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _lr_value(text: str) -> float | str:
    """``--lr``: a number, or ``find`` (the learning-rate test picks one)."""
    if text.strip().lower() == "find":
        return "find"
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"give a number like 0.001, or find (got "
                                         f"{text!r})") from None


def _add_project_args(p: argparse.ArgumentParser) -> None:
    """The data, model and training options shared by ``train`` and ``search``."""
    p.add_argument("project", nargs="?", help="a .tdproj project file")
    p.add_argument("--data", help="a table (CSV/TSV/TXT, Excel .xlsx, Parquet, JSON lines), an "
                   "image folder (one sub-folder per class, or train/ and test/ folders), a .zip "
                   "of one, MNIST-style IDX files, CIFAR-10 binary batches, or sample:NAME")
    p.add_argument("--target", help="the column to predict (tables)")
    p.add_argument("--sheet", help="Excel: the sheet to read (default: the first with data)")
    p.add_argument("--delimiter", help="CSV: the field separator (default: detected)")
    p.add_argument("--encoding", help="CSV: the text encoding, e.g. utf-8 or cp1252 (default: "
                   "detected)")
    p.add_argument("--decimal", choices=[".", ","], help="CSV: the decimal mark (default: "
                   "detected)")
    p.add_argument("--image-size", type=int, help="images: side length to resize to (pixels)")
    p.add_argument("--image-mode", choices=["rgb", "gray"], help="images: colour or grayscale")
    p.add_argument("--image-loading", choices=["auto", "memory", "stream"],
                   help="images: hold them decoded in memory, or decode each batch in worker "
                        "processes while training (auto: stream sets too big to hold)")
    p.add_argument("--augment", help="images: augmentations for training, e.g. "
                   "hflip,rotation=15,crop=0.8,brightness=0.2")
    p.add_argument("--max-vocab", type=int, help="text: the vocabulary size")
    p.add_argument("--max-length", type=int, help="text: tokens kept per example")
    p.add_argument("--class-weights", choices=["none", "balanced"],
                   help="weight classes by their rarity in the loss")
    p.add_argument("--task", choices=["classification", "regression", "causal-lm"],
                   help="override the task detected (causal-lm: tune a language model)")
    p.add_argument("--model", choices=list(PRESETS),
                   help="the network preset (see `models`)")
    p.add_argument("--model-spec", metavar="FILE",
                   help="a JSON file of layers ([{\"type\": \"linear\", ...}, ...] or "
                        "{\"layers\": [...]}) used instead of a preset")
    p.add_argument("--init-from", metavar="RUN_DIR_OR_FILE",
                   help="transfer learning: start from a run folder or a weights file "
                        "(.safetensors, or a PyTorch state dict)")
    p.add_argument("--freeze-epochs", type=int,
                   help="with --init-from: epochs to keep the loaded layers fixed")
    p.add_argument("--backbone", metavar="NAME_OR_FOLDER",
                   help="start from a pretrained backbone: efficientnet_lite0 (images), minilm "
                        "(text), or a local Hugging Face model folder (see `models`)")
    p.add_argument("--mode", choices=["probe", "finetune", "lora", "full"],
                   help="with --backbone: linear probe (frozen, cached features), fine-tune "
                        "(head first, then gradual unfreezing; the default), LoRA or full")
    p.add_argument("--head-epochs", type=int,
                   help="fine-tuning: epochs that train only the new head first (default 1)")
    p.add_argument("--lora-rank", type=int, help="LoRA: the adapters' rank (default 8)")
    p.add_argument("--hidden", help="hidden layer sizes, e.g. 256,128")
    p.add_argument("--dropout", type=float)
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=_lr_value, metavar="RATE|find",
                   help="learning rate; train: 'find' runs the learning-rate test first and "
                        "trains with the rate it proposes")
    p.add_argument("--optimizer", choices=list(OPTIMIZERS))
    p.add_argument("--momentum", type=float, help="SGD and RMSprop momentum")
    p.add_argument("--nesterov", action="store_true", help="SGD: Nesterov momentum")
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--schedule", choices=list(SCHEDULES), help="learning-rate schedule")
    p.add_argument("--warmup-epochs", type=int, help="linear learning-rate warm-up")
    p.add_argument("--loss", choices=list(LOSSES))
    p.add_argument("--label-smoothing", type=float)
    p.add_argument("--grad-clip", type=float, help="clip the gradient norm to this (0: off)")
    p.add_argument("--early-stopping", type=int, metavar="PATIENCE",
                   help="stop after PATIENCE epochs without a better validation loss (0: "
                        "every epoch; small tables: 16 by default)")
    p.add_argument("--min-delta", type=float, help="early stopping: the least improvement that "
                                                   "counts")
    p.add_argument("--monitor", choices=["val_loss", "val_metric"],
                   help="what picks the best epoch and drives early stopping: the validation "
                        "loss (default) or metric (accuracy, or MAE for numbers)")
    p.add_argument("--seed", type=int, help="seed for the split and the training")
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--oom-retry", action="store_true",
                   help="on a GPU out-of-memory error, retry with half the batch size")
    p.add_argument("--no-yardstick", action="store_true",
                   help="do not fit the classic model (gradient boosting, TF-IDF + logistic "
                        "regression) that a table or text run is compared with")
    p.add_argument("--refit", choices=["auto", "on", "off"],
                   help="train again on the training and validation rows for the epochs "
                        "validation chose (auto: tables under 20,000 training rows; on: text too)")
    p.add_argument("--quiet", action="store_true", help="no per-epoch progress")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="main.py", description="TrainDesk: train neural networks on your own "
                     "data. Without a command, the desktop app starts.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    sub.add_parser("samples", help="list the built-in sample datasets")
    _add_models(sub)
    _add_train_and_search(sub)
    _add_run_commands(sub)
    sub.add_parser("gpu", help="why is my GPU not used? what PyTorch sees here, and what to do")
    _add_export_and_shrink(sub)
    cli_lm.add_generate(sub)
    _add_cluster(sub)
    return parser


def _add_cluster(sub) -> None:
    p = sub.add_parser("cluster", help="write the job files that run a project or resume a run "
                                       "on a cluster (SLURM, Kubernetes / Kubeflow, torchrun)")
    p.add_argument("source", help="a .tdproj project file (a new run) or a run folder (gone on "
                                  "with from its checkpoint)")
    p.add_argument("--target", required=True, choices=["slurm", "kubernetes", "torchrun"])
    p.add_argument("--out", required=True, help="the folder to write the job files into")
    p.add_argument("--run-dir", help="a project's run folder (default: beside the project); "
                                     "on storage every node sees")
    p.add_argument("--nodes", type=int, default=1)
    p.add_argument("--gpus-per-node", type=int, default=1, help="0: CPUs only")
    p.add_argument("--minutes", type=int, help="the time limit (default: twice the estimate "
                                               "measured here, at least 30)")
    p.add_argument("--image", help="kubernetes: the container image with TrainDesk installed")
    p.add_argument("--shared", help="where the shared volume is mounted (default: the run "
                                    "folder's parent)")
    p.add_argument("--app-dir", help="where TrainDesk is installed on the nodes (default "
                                     "/opt/traindesk)")
    p.add_argument("--no-estimate", action="store_true",
                   help="do not time a sample of the run here (time limit: --minutes or 1 h)")


def _add_models(sub) -> None:
    p = sub.add_parser("models", help="list the network presets, layer types and pretrained "
                       "backbones; add or remove your own model folders")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--add", metavar="FOLDER", help="add a local Hugging Face model folder "
                     "(config.json, model.safetensors and, for text, tokenizer.json) to the "
                     "model library")
    how.add_argument("--remove", metavar="FOLDER", help="forget an added model folder (its "
                     "files stay)")
    p.add_argument("--json", action="store_true", help="print the pretrained backbones as JSON")


def _add_train_and_search(sub) -> None:
    p = sub.add_parser("train", help="train a model and save a run folder")
    _add_project_args(p)
    p.add_argument("--resume", metavar="RUN_DIR",
                   help="continue a stopped, killed or finished run from its last checkpoint "
                        "(with --epochs N: up to N epochs in all)")
    p.add_argument("--folds", type=int, metavar="K",
                   help="cross-validation: K runs, each validating on another K-th of the "
                        "non-test rows; prints each fold's metric and the mean +/- std")
    p.add_argument("--out", help="the run folder to create (default: a new folder under the "
                   "project's runs folder or ~/TrainDesk/runs)")
    p.add_argument("--name", help="the run's name, as the app lists it (default: e.g. "
                   "'Run 3 · small MLP')")
    p.add_argument("--find-lr-only", action="store_true",
                   help="run the learning-rate test, print its curve and proposed rate, and "
                        "stop (no run is made)")
    _add_mlflow_arg(p, "the run (settings, every epoch's numbers, the test metrics, the model "
                       "files)")
    cli_lm.add_train_args(p)

    p = sub.add_parser("search", help="hyperparameter search (Optuna): trials are ordinary runs")
    _add_project_args(p)
    p.add_argument("--trials", type=int, default=20, help="how many trials (default 20)")
    p.add_argument("--minutes", type=float, help="stop starting trials after this many minutes")
    p.add_argument("--sampler", choices=["tpe", "random"], default="tpe")
    p.add_argument("--space", default="lr,batch_size,dropout,weight_decay",
                   help="what to search, comma-separated, from: lr, batch_size, width, depth, "
                        "dropout, weight_decay, optimizer (default: %(default)s)")
    p.add_argument("--no-pruning", action="store_true",
                   help="let every trial run all its epochs (default: stop hopeless ones)")
    p.add_argument("--save-best", nargs="?", const="", metavar="PROJECT_FILE",
                   help="write the best trial's settings: into the project file given with "
                        "--project, else into PROJECT_FILE (default: best.tdproj in the "
                        "search's folder)")
    p.add_argument("--out", help="the search's folder to create, holding one run folder per "
                   "trial (default: a new folder under the runs folder)")


def _add_run_commands(sub) -> None:
    """The commands that read a finished run: evaluate, compare, predict."""
    p = sub.add_parser("evaluate", help="metrics of a run on its test split or a labelled file")
    p.add_argument("run_dir")
    p.add_argument("--data", help="a labelled CSV file to evaluate on instead of the test split")
    p.add_argument("--split", choices=["test", "val"], default="test",
                   help="the run's split to evaluate on (default: test)")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.add_argument("--threshold", metavar="P",
                   help="two-class models: evaluate deciding at this probability instead of "
                        "the run's saved threshold (between 0 and 1)")
    p.add_argument("--save-threshold", action="store_true",
                   help="with --threshold: save it with the run, for predict, exports, the "
                        "package, the report and the app")

    p = sub.add_parser("compare", help="compare runs on the same rows, or average them into "
                                       "an ensemble")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--split", choices=["test", "val"], default="test",
                   help="the runs' shared split to compare on (default: test)")
    p.add_argument("--data", help="a labelled CSV file (or image folder) to compare on instead")
    p.add_argument("--ensemble", action="store_true",
                   help="also evaluate the runs' average (probabilities, or predictions)")
    p.add_argument("--export", choices=["onnx", "pt2", "safetensors"],
                   help="with --ensemble: export the ensemble as one model (needs --out)")
    p.add_argument("--out", help="the ensemble's model file (with --export)")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")

    p = sub.add_parser("predict", help="predict for every row of a CSV file, or for images")
    p.add_argument("run_dir")
    p.add_argument("input", help="a CSV/Excel file with the feature columns, an image file or a "
                                 "folder of images (image models)")
    p.add_argument("--out", help="the CSV file to write (default: standard output)")
    p.add_argument("--threshold", metavar="P",
                   help="two-class models: say the second class from this probability on "
                        "(between 0 and 1; default: the threshold saved with the run, else "
                        "0.5)")


def _add_export_and_shrink(sub) -> None:
    p = sub.add_parser("export", help="export a run's model and check it")
    p.add_argument("run_dir")
    p.add_argument("--format", required=True,
                   choices=["onnx", "pt2", "safetensors", "package", "report", "hf",
                            "adapter"],
                   help="package: a folder (and .zip) with model.onnx, preprocessing.json, "
                        "predict.py and requirements.txt that predicts without TrainDesk; "
                        "report: an HTML report (and a PDF beside it) for people who do not "
                        "work in machine learning; a language-model run: hf (a merged model "
                        "folder) or adapter (its LoRA adapter, peft format)")
    p.add_argument("--out", required=True, help="the model file (a folder for package, an "
                                                ".html file for report)")
    p.add_argument("--price-per-hour", type=float, default=1.0,
                   help="report: what an hour of the training machine costs (default 1.0)")
    p.add_argument("--currency", default="$", help="report: the currency sign (default $)")
    p.add_argument("--no-pdf", action="store_true", help="report: HTML only")
    _add_mlflow_arg(p, "the exported files, beside the run (in the MLflow run it was logged "
                       "to, else a new one)")
    p.add_argument("--quantize", choices=["int8"],
                   help="with onnx (or report, measured in it): also write int8 versions "
                        "(dynamic; static too for conv nets) and print size, latency and test "
                        "metric before and after")
    p.add_argument("--data", help="a CSV file to check the export on, if the run's data is gone")

    p = sub.add_parser("shrink", help="make a smaller model from a run (pruning or "
                                      "distillation) as a new run, and measure both")
    p.add_argument("run_dir")
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--prune", type=float, metavar="SHARE",
                     help="set this share of the weights to zero (e.g. 0.5), then fine-tune")
    how.add_argument("--distill", nargs="?", const="auto", metavar="STUDENT",
                     help="train a smaller network on the run's outputs: 'half' (half the "
                          "widths) or a preset such as mlp_small (default: the first that fits)")
    p.add_argument("--epochs", type=int, help="fine-tuning / student epochs")
    p.add_argument("--quiet", action="store_true", help="no per-epoch progress lines")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one headless command; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from . import __version__
        print(f"TrainDesk {__version__}")
        return EXIT_OK
    if not args.command:
        parser.print_help()
        return EXIT_BAD_INPUT
    handler = {"samples": _cmd_samples, "models": _cmd_models, "train": _cmd_train,
               "search": _cmd_search,
               "evaluate": _cmd_evaluate, "compare": _cmd_compare,
               "predict": _cmd_predict, "export": _cmd_export,
               "shrink": _cmd_shrink, "gpu": _cmd_gpu,
               "generate": cli_lm.generate_answer, "cluster": _cmd_cluster}[args.command]
    try:
        return handler(args)
    except TrainDeskError as exc:
        _err(f"error: {exc}")
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        _err("interrupted")
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, not a trace
        if os.environ.get("TRAINDESK_DEBUG"):
            raise
        _err(f"error: internal error ({type(exc).__name__}: {exc}). Please report it; run with "
             f"TRAINDESK_DEBUG=1 for details.")
        return EXIT_INTERNAL


# -- cluster --------------------------------------------------------------------------------------
def _cmd_cluster(args) -> int:
    from .jobs.cluster import plan_for, write_job_files

    plan = plan_for(args.source, run_dir=args.run_dir or "", nodes=args.nodes,
                    gpus_per_node=args.gpus_per_node, minutes=args.minutes,
                    image=args.image or "", shared=args.shared or "",
                    app_dir=args.app_dir or "", estimate=not args.no_estimate)
    for path in write_job_files(plan, args.target, args.out):
        print(f"wrote {path}")
    print(f"{plan.nodes} node(s) x {plan.procs_per_node} process(es), {plan.memory_gb} GB, time "
          f"limit {plan.time_limit}; run folder {plan.run_dir} (see docs/cluster.md)")
    return EXIT_OK


# -- samples --------------------------------------------------------------------------------------
def _cmd_samples(args) -> int:
    from .data.samples import list_samples

    rows = [(s.name, s.task, s.kind, s.target, s.description) for s in list_samples()]
    width = max(len(r[0]) for r in rows)
    for name, task, kind, target, desc in rows:
        print(f"{name:<{width}}  {task:<14}  {kind:<7}  target={target}  {desc}")
    return EXIT_OK


# -- gpu ------------------------------------------------------------------------------------------
def _cmd_gpu(args) -> int:
    from .system.gpu_check import check_gpu

    print(check_gpu().text())
    return EXIT_OK


# -- models ---------------------------------------------------------------------------------------
def _cmd_models(args) -> int:
    from .models import library
    from .models.layers import LAYER_TYPES
    from .models.presets import PRESET_INFO

    if args.add or args.remove:
        return _change_library(args)
    if args.json:
        print(json.dumps({"backbones": [e.as_dict() for e in library.entries()],
                          "library": str(library.library_path())}, indent=2))
        return EXIT_OK
    width = max(len(name) for name in PRESET_INFO)
    print("Presets (--model NAME; auto picks one from the data):")
    for name, info in PRESET_INFO.items():
        print(f"  {name:<{width}}  {info.kind:<7}  {info.title}: {info.description}")
    print("Layer types (for --model-spec FILE):")
    for name, kind in LAYER_TYPES.items():
        settings = ", ".join(f"{k}={v!r}" for k, v in kind.defaults.items())
        print(f"  {name:<20}  {kind.title}" + (f" ({settings})" if settings else ""))
    _print_backbones(library.entries())
    return EXIT_OK


def _change_library(args) -> int:
    from .models import library

    if args.add:
        entry = library.add_folder(args.add)
        how = "--task causal-lm --backbone" if entry.kind == library.LM_KIND else "--backbone"
        print(f"Added {entry.name} ({entry.kind}, {entry.architecture}, "
              f"{library.format_count(entry.params)} parameters): train with {how} "
              f"{entry.key}")
    else:
        print(f"Removed {library.remove_folder(args.remove)} from the model library (its files "
              f"are kept).")
    return EXIT_OK


def _print_backbones(entries) -> None:
    """The pretrained backbones as a table, and the added folders that no longer load."""
    from .models.library import format_bytes, format_count

    print("Pretrained backbones (--backbone NAME; add your own with models --add FOLDER):")
    rows = [("NAME", "KIND", "PARAMS", "SIZE", "INPUT", "LICENCE", "FITS IN MEMORY")]
    rows += [(e.key, e.kind, format_count(e.params), format_bytes(e.disk_bytes), e.input_size,
              e.license or "unknown", e.fit_text) for e in entries if not e.error]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  " + "  ".join(f"{v:<{w}}" for v, w in zip(row, widths)) + "  " + row[-1])
    for e in entries:
        if e.error:
            print(f"  {e.key}: cannot be used: {e.error}")


def _read_model_spec(path: str) -> list[dict]:
    """The layer list of a ``--model-spec`` JSON file."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TrainDeskError(f"Model spec file not found: {path}.") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TrainDeskError(f"{Path(path).name} is not a readable JSON model spec ({exc}).") \
            from None
    layers = doc.get("layers") if isinstance(doc, dict) else doc
    if not isinstance(layers, list) or not layers or not all(
            isinstance(layer, dict) and isinstance(layer.get("type"), str) for layer in layers):
        raise TrainDeskError(f"{Path(path).name} must hold a list of layers like "
                             f'[{{"type": "linear", "out_features": 64}}, ...] (or '
                             f'{{"layers": [...]}}); see `main.py models`.')
    return layers


# -- train ----------------------------------------------------------------------------------------
def _cmd_train(args) -> int:
    from .training import distributed

    # Under torchrun: join the other processes first (rank 0 alone prints and writes).
    group = distributed.setup(args.device or "auto")
    try:
        if group is not None and args.folds is not None:
            raise TrainDeskError("Cross-validation runs one process at a time; start it "
                                 "without torchrun.")
        return _train(args)
    finally:
        distributed.teardown()


def _train(args) -> int:
    from .jobs.training import TrainingJob
    from .training.distributed import broadcast, is_main

    if not is_main():
        args.quiet = True  # one voice: rank 0's
    # Rank 0's look decides for all: a rank that looked after rank 0 made the folder would
    # otherwise resume while the others start afresh.
    if not args.resume and args.out and broadcast(_is_run(args.out)):
        decision = broadcast(_out_decision(args) if is_main() else None)
        _go_on_with(args, *decision)  # the same command again (a requeued job)
    if args.task == "causal-lm" or (args.resume and _is_language_model_run(args.resume)):
        return cli_lm.train(args, _run_job,
                            lambda job, result: _exit_status(job, result, args.mlflow))
    if args.resume:
        if args.project or args.data:
            raise TrainDeskError("--resume continues a run with its own settings; give no "
                                 "project file or --data with it.")
        if args.lr is not None or args.find_lr_only:
            raise TrainDeskError("--resume continues a run with its own learning rate; leave "
                                 "--lr and --find-lr-only out.")
        return _resume(args)
    project, dataset = _project_from_args(args)
    progress = [] if args.quiet else [ConsoleProgress()]
    say = (lambda m: None) if args.quiet else _err
    if args.lr == "find" or args.find_lr_only:
        if _find_lr(args, project, dataset, say):
            return EXIT_OK
    if args.folds is not None:
        if args.name:
            raise TrainDeskError("--name names one run; cross-validation names its runs "
                                 "itself ('Fold 2 of 5 · ...'). Leave --name out.")
        return _cross_validate(args, project, dataset, progress, say)
    job = TrainingJob(project, dataset=dataset, run_dir=Path(args.out) if args.out else None,
                      runs_dir=project.runs_dir(), callbacks=progress, on_message=say,
                      name=_run_name(args.name))

    result = _run_job(job, args.quiet)
    if args.project and is_main():
        _record_runs(args.project, [result])
    _print_result(result)
    return _exit_status(job, result, args.mlflow)


def _is_run(path: str) -> bool:
    from .runs.folder import RunFolder

    return RunFolder.is_run(Path(path).expanduser())


def _same_source(a: str, b: str) -> bool:
    if a == b:
        return True
    return bool(a and b) and not a.startswith("sample:") and (
        Path(a).expanduser().resolve() == Path(b).expanduser().resolve())


def _out_decision(args) -> tuple[str, str]:
    """What to do with the run already in ``--out`` (rank 0 looks; every rank follows):
    ``("resume", status)``, ``("afresh", status)`` for a table run stopped before its first
    epoch ended (it has no checkpoint to go on from, and nothing to lose), or ``("refuse",
    why)``."""
    from .errors import RunError
    from .runs.folder import RunFolder
    from .runs.project import Project

    try:
        folder = RunFolder.open(Path(args.out).expanduser())
    except RunError as exc:
        return "refuse", (f"{args.out} already holds a run that cannot be gone on with "
                          f"({exc}) Choose an empty folder.")
    had = str((folder.settings().get("data") or {}).get("source", ""))
    given = args.data or (Project.load(args.project).data.source if args.project else "")
    if not _same_source(had, str(given)):
        return "refuse", (f"{args.out} already holds a run of other data ({had}). Choose an "
                          f"empty folder, or --resume {args.out} to go on with that run.")
    if (not folder.is_language_model and folder.status != "finished"
            and not (folder.path / "checkpoint.pt").is_file()):
        return "afresh", folder.status
    return "resume", folder.status


def _go_on_with(args, decision: str, detail: str) -> None:
    """``train ... --out RUN`` where RUN already holds a run: the same command started again
    (a requeued or restarted job) goes on with that run, from its last checkpoint, with its
    own settings (finished: nothing to do); one stopped before its first epoch ended starts
    again in the same folder. A run of other data is refused."""
    from .training.distributed import is_main

    if decision == "refuse":
        raise TrainDeskError(detail)
    if decision == "afresh":
        if not args.quiet:
            _err(f"{args.out} holds a run of the same data stopped ({detail}) before its first "
                 f"epoch ended: starting it again there.")
        if is_main():  # its description only: the files of the new start replace the rest
            (Path(args.out).expanduser() / "run.json").unlink(missing_ok=True)
        return
    if not args.quiet:
        _err(f"{args.out} holds a {detail} run of the same data: going on from its last "
             f"checkpoint, with its own settings.")
    args.resume = str(args.out)
    args.project = args.data = args.backbone = args.lr = None
    args.find_lr_only = False
    args.task = None


def _is_language_model_run(path: str) -> bool:
    from .runs.folder import RunFolder

    return RunFolder.is_run(Path(path).expanduser()) and RunFolder.open(
        Path(path).expanduser()).is_language_model


def _find_lr(args, project, dataset, say) -> bool:
    """``--lr find``: the learning-rate test on the training split; print its curve and
    proposal and set *project*'s rate to it. True when that is all that was asked for."""
    from .jobs.training import TrainingJob
    from .training.distributed import current, is_main

    if current() is not None:
        raise TrainDeskError("The learning-rate test runs in one process; run it without "
                             "torchrun (--find-lr-only) and pass the rate it proposes as --lr.")
    say(f"Learning-rate test: training on a growing rate, one batch each, from 1e-07 to 10 "
        f"(current rate {project.training.lr:g}) ...")
    found = TrainingJob(project, dataset=dataset, on_message=say).find_lr()
    if is_main():
        print("lr        loss")
        for lr, loss in found.rows(8):
            print(f"{lr:<9.1e} {loss:.4f}")
        print(f"proposed learning rate: {found.suggested:g}. {found.reason}")
    if args.find_lr_only:
        return True
    project.training.lr = found.suggested  # the run's config.json records it like any setting
    say(f"Training with the proposed learning rate {found.suggested:g} (from the "
        f"learning-rate test).")
    return False


def _cmd_search(args) -> int:
    from .jobs.search import Search, SearchSpace

    if args.lr == "find":
        raise TrainDeskError("--lr find is for train; a search tries rates itself (give a "
                             "number, or search 'lr' in --space).")
    project, dataset = _project_from_args(args)
    space = SearchSpace(params=[p for p in args.space.replace(" ", "").split(",") if p])
    say = (lambda m: None) if args.quiet else _err
    search = Search(project, space, trials=args.trials, minutes=args.minutes,
                    sampler=args.sampler, pruning=not args.no_pruning, dataset=dataset,
                    runs_dir=project.runs_dir(), out=Path(args.out) if args.out else None,
                    on_message=say)
    result = _run_job(search, args.quiet)
    if args.project:
        _record_runs(args.project, result.runs)
    print(f"search: {result.folder}")
    for t in result.trials:
        value = "-" if t.value is None or t.value != t.value else f"{t.value:.4f}"
        params = "  ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                           for k, v in t.params.items())
        print(f"trial {t.number:>3}  {t.state:<8}  val_{result.metric} {value}  {params}")
    best = result.best
    if best is None:
        raise TrainDeskError("No trial finished, so there is no best setting. Give more trials "
                             "or minutes, or check the messages above.")
    print(f"best: trial {best.number}  val_{result.metric} {best.value:.4f}  run "
          f"{result.folder / best.run}")
    if args.save_best is not None:
        _save_best(args, project, result.folder, best.params)
    return EXIT_OK


def _save_best(args, project, folder: Path, params: dict) -> None:
    """Write the best trial's settings: into the project file the search read (as it is now),
    else into a new project file with the data and settings the search used."""
    from .jobs.search import apply_params
    from .runs.project import Project

    if args.project and not args.save_best:
        saved = Project.load(args.project)
        target = saved.path
    else:
        saved = project.copy()
        saved.runs = []
        target = Path(args.save_best).expanduser() if args.save_best else folder / "best.tdproj"
    apply_params(saved, params)
    path = saved.save(target)
    print(f"saved the best settings into {path}")


def _record_runs(project_file: str, results) -> None:
    """Add runs to the project file as it is now: command-line overrides are these runs'
    settings (kept in their config.json), not edits of the project."""
    from .runs.project import Project

    saved = Project.load(project_file)
    saved.runs.extend(r.record() for r in results)
    saved.save(saved.path)


def _cross_validate(args, project, dataset, progress, say) -> int:
    from .jobs.crossval import CrossValidation

    if args.out:
        raise TrainDeskError("--out names one run folder; cross-validation makes a folder per "
                             "fold under the runs folder. Leave --out out.")
    cv = CrossValidation(project, args.folds, dataset=dataset, runs_dir=project.runs_dir(),
                         callbacks=progress, on_message=say)
    result = _run_job(cv, args.quiet)
    if args.project:
        _record_runs(args.project, result.runs)
    summary = result.summary()
    print(f"cross-validation: {result.folder}")
    print(f"folds: {summary['completed']} of {summary['k']}"
          + (" (stopped)" if result.stopped else ""))
    metric = summary["metric"]
    for fold in summary["folds"]:
        print(f"fold {fold['fold']}: val_{metric} {fold['val']:.4f}  test_{metric} "
              f"{fold['test']:.4f}  ({fold['run']})")
    for part in ("val", "test"):
        print(f"{part}_{metric}: mean {summary[part]['mean']:.4f}  std "
              f"{summary[part]['std']:.4f}")
    return EXIT_OK


def _project_from_args(args):
    """The project and dataset that ``train`` or ``search`` arguments describe."""
    from .data.dataset import load_dataset
    from .data.samples import SAMPLE_PREFIX
    from .jobs.training import apply_suggestions
    from .runs.project import DataConfig, Project

    if args.project and args.data:
        raise TrainDeskError("Give either a project file or --data, not both.")
    if args.project:
        project = Project.load(args.project)
        if args.target:
            project.data.target = args.target
        if args.task:
            project.data.task = args.task
        if args.seed is not None:
            project.data.split.seed = args.seed
        _apply_data_args(project.data, args)
        dataset = load_dataset(project.data.source, project.data.read_options)
    elif args.data:
        source = args.data
        if not source.startswith(SAMPLE_PREFIX):
            source = str(Path(source).expanduser().resolve())
        data = DataConfig(source=source, target=args.target, task=args.task)
        _apply_data_args(data, args)
        dataset = load_dataset(source, data.read_options)
        if not args.target and dataset.sample is None and dataset.kind != "image":
            cols = ", ".join(map(str, list(dataset.frame.columns)[:12]))
            raise TrainDeskError(f"Say which column to predict with --target (columns: {cols}).")
        project = Project(name=dataset.name, data=data)
        if args.seed is not None:
            project.data.split.seed = args.seed
        apply_suggestions(project, dataset)
    else:
        raise TrainDeskError("Give a project file or --data (a CSV file or sample:NAME).")
    _apply_model_args(project, args)
    if args.data and project.model.backbone:
        # A backbone trains on its own schedule (the one the app proposes), not the one
        # suggested for a network from scratch; options given on the command line still win.
        from .jobs.estimate import schedule_for_start

        for name, value in schedule_for_start(project, None, dataset.n_rows).items():
            setattr(project.training, name, value)
    _apply_training_args(project, args)
    project.validate()
    if not args.quiet:
        from .data.health import check_health

        for finding in check_health(dataset, project.data):
            if finding.severity == "warning":
                _err(f"Data check: {finding.message}")
    return project, dataset


def _apply_model_args(project, args) -> None:
    """Copy the model options given on the command line into *project*."""
    if args.model:
        from .models.presets import suggested_lr

        if args.lr is None and project.training.lr == suggested_lr(project.model.preset):
            project.training.lr = suggested_lr(args.model)  # the new preset's own rate
        project.model.preset = args.model
    if args.hidden:
        try:
            project.model.hidden = [int(v) for v in args.hidden.replace(" ", "").split(",") if v]
        except ValueError:
            raise TrainDeskError(f"--hidden takes whole numbers separated by commas, like "
                                 f"256,128 (got {args.hidden!r}).") from None
    if args.dropout is not None:
        project.model.dropout = args.dropout
    if args.model_spec:
        project.model.layers = _read_model_spec(args.model_spec)
    if args.init_from:
        project.model.init_from = str(Path(args.init_from).expanduser().resolve())
    if args.freeze_epochs is not None:
        project.model.freeze_epochs = args.freeze_epochs
    if args.backbone:
        name = args.backbone.strip()
        project.model.backbone = (name if name in ("efficientnet_lite0", "minilm")
                                  else str(Path(name).expanduser().resolve()))
    for arg, name in (("mode", "train_mode"), ("head_epochs", "head_epochs"),
                      ("lora_rank", "lora_rank")):
        if getattr(args, arg) is not None:
            setattr(project.model, name, getattr(args, arg))


def _apply_training_args(project, args) -> None:
    """Copy the training options given on the command line into *project*."""
    for name in ("epochs", "batch_size", "lr", "optimizer", "seed", "device", "momentum",
                 "weight_decay", "schedule", "warmup_epochs", "loss", "label_smoothing",
                 "grad_clip"):
        value = getattr(args, name)
        if value is not None and value != "find":  # the test sets the rate later
            setattr(project.training, name, value)
    if args.nesterov:
        project.training.nesterov = True
    if args.early_stopping is not None:
        project.training.early_stopping = args.early_stopping > 0
        if args.early_stopping > 0:
            project.training.patience = args.early_stopping
    if args.min_delta is not None:
        project.training.min_delta = args.min_delta
    if args.monitor:
        project.training.monitor = args.monitor
    if args.class_weights:
        project.training.class_weights = args.class_weights
    if args.oom_retry:
        project.training.oom_retry = True
    if getattr(args, "no_yardstick", False):
        project.training.yardstick = False
    if getattr(args, "refit", None):
        project.training.refit = args.refit


def _run_job(job, quiet: bool):
    """Run *job* with Ctrl+C, SIGTERM or SIGUSR1 stopping it cleanly after the current batch
    (the run keeps its last epoch); ``job.preempted_by`` is then the scheduler's signal."""
    def _on_sigint(signum, frame):  # first Ctrl+C: stop cleanly and keep the run
        signal.signal(signal.SIGINT, signal.default_int_handler)
        _err("stopping after this batch (Ctrl+C again to abort) ...")
        job.request_stop()

    def _on_preempt(signum, frame):
        job.preempted_by = signum
        _err(f"{signal.Signals(signum).name}: saving the run and stopping after this batch ...")
        job.request_stop()

    job.preempted_by = None
    handlers = {signal.SIGINT: _on_sigint}
    handlers.update({getattr(signal, name): _on_preempt for name in PREEMPT_SIGNALS
                     if hasattr(signal, name)})
    previous = {sig: signal.signal(sig, handler) for sig, handler in handlers.items()}
    try:
        return job.run()
    except Cancelled:
        if job.preempted_by is None:
            raise
        name = signal.Signals(job.preempted_by).name
        _err(f"preempted by {name} before the first epoch ended: nothing to keep; run the "
             f"same command again to start it.")
        raise SystemExit(128 + int(job.preempted_by)) from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _exit_status(job, result, mlflow: str | None = None) -> int:
    """0, or after a scheduler's signal 128 + it, said in one line. With *mlflow* (a URI, or
    ``""`` for the local store) rank 0 logs the run there first."""
    from .training.distributed import is_main

    signum = getattr(job, "preempted_by", None)
    if mlflow is not None and is_main() and signum is None:  # a requeued job logs at its end
        from .jobs.tracking import log_run

        print(log_run(result.run_dir, mlflow or None).sentence())
    if signum is None:
        return EXIT_OK
    _err(f"preempted by {signal.Signals(signum).name}: the run in {result.run_dir} is saved "
         f"({result.status}); run the same command again to go on.")
    return 128 + int(signum)


def _run_name(name: str | None) -> str:
    """The run name given with ``--name``, checked before any work starts."""
    from .runs.folder import MAX_NAME

    if name is None:
        return ""
    name = " ".join(name.split())
    if not name or len(name) > MAX_NAME:
        raise TrainDeskError(f"--name needs a name of 1 to {MAX_NAME} characters, e.g. "
                             f"--name \"small MLP, more epochs\".")
    return name


def _print_result(result) -> None:
    from .training.distributed import is_main

    if not is_main():
        return
    print(f"run: {result.run_dir}")
    if result.name:
        print(f"name: {result.name}")
    print(f"status: {result.status}")
    print("test: " + "  ".join(f"{k} {v:.4f}" for k, v in result.metrics["test"].items()))
    final = result.metrics.get("refit")
    if final:
        print(f"final fit: {final['epochs']} epochs on {final['rows']} training and validation "
              f"rows")
    classic = getattr(result.evaluation, "yardstick", None)
    if classic is not None:  # the "test:" line's neighbour, in the same terse form
        print(f"{classic.name}: {classic.metric} {classic.value:.4f} on the same rows "
              f"(yours {classic.model:.4f})")


def _resume(args) -> int:
    from .errors import NothingToDo
    from .jobs.training import TrainingJob

    progress = [] if args.quiet else [ConsoleProgress()]
    try:
        job = TrainingJob.resume(Path(args.resume).expanduser(), epochs=args.epochs,
                                 callbacks=progress,
                                 on_message=(lambda m: None) if args.quiet else _err)
    except NothingToDo as done:  # a preemptible job started again after it finished
        print(done)
        return EXIT_OK
    if args.name:
        job.name = _run_name(args.name)  # a resumed run may get a (new) name, too
    result = _run_job(job, args.quiet)
    _print_result(result)
    return _exit_status(job, result, args.mlflow)


def _apply_data_args(data, args) -> None:
    """Copy the data-reading options given on the command line into *data*."""
    options = dict(data.read_options)
    for name in ("sheet", "delimiter", "encoding", "decimal"):
        value = getattr(args, name)
        if value is not None:
            options[name] = "\t" if name == "delimiter" and value in ("\\t", "tab") else value
    data.read_options = options
    if args.image_size is not None:
        data.image_size = args.image_size
    if args.image_mode:
        data.image_mode = "L" if args.image_mode == "gray" else "RGB"
    if args.image_loading:
        data.image_loading = args.image_loading
    if args.augment:
        data.augment = _parse_augment(args.augment)
    text = dict(data.text)
    if args.max_vocab is not None:
        text["max_vocab"] = args.max_vocab
    if args.max_length is not None:
        text["max_length"] = args.max_length
    data.text = text


_AUGMENT_NAMES = {"hflip": ("hflip", True), "vflip": ("vflip", True),
                  "rotation": ("rotation", 15.0),
                  "rotate": ("rotation", 15.0), "crop": ("crop_scale", 0.8),
                  "brightness": ("brightness", 0.2), "contrast": ("contrast", 0.2),
                  "saturation": ("saturation", 0.2)}


def _parse_augment(text: str) -> dict:
    """``hflip,rotation=15,crop=0.8`` -> augmentation settings."""
    out: dict = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, value = item.partition("=")
        if name not in _AUGMENT_NAMES:
            raise TrainDeskError(f"Unknown augmentation {name!r}; use "
                                 f"{', '.join(sorted(_AUGMENT_NAMES))}.")
        key, default = _AUGMENT_NAMES[name]
        if isinstance(default, bool):
            out[key] = True
            continue
        try:
            out[key] = float(value) if value else default
        except ValueError:
            raise TrainDeskError(f"--augment {name} takes a number (got {value!r}).") from None
    return out


class ConsoleProgress(Callback):
    """Per-epoch progress lines on stderr (and a live batch counter on a terminal)."""

    def __init__(self):
        self.epochs = 0
        self.tty = sys.stderr.isatty()
        self.last = 0.0

    def on_fit_begin(self, logs):
        self.epochs = logs["epochs"]
        _err(f"Training on {logs['device']}: {logs['n_train']} samples, batch "
             f"{logs['batch_size']}, {logs['epochs']} epochs, {logs['params']:,} parameters.")

    def on_batch_end(self, step, logs):
        now = time.monotonic()
        if self.tty and now - self.last > 0.5:
            self.last = now
            sys.stderr.write(f"\r  epoch {logs['epoch']}/{self.epochs}  batch "
                             f"{logs['batch']}/{logs['batches']}")
            sys.stderr.flush()

    def on_epoch_end(self, epoch, logs):
        parts = [f"epoch {logs['epoch']}/{self.epochs}"]
        for key in ("loss", "accuracy", "mae", "val_loss", "val_accuracy", "val_mae"):
            if key in logs:
                parts.append(f"{key} {logs[key]:.4f}")
        parts.append(f"{logs['epoch_seconds']:.2f}s")
        _err(("\r" if self.tty else "") + "  ".join(parts))


# -- evaluate -------------------------------------------------------------------------------------
def _threshold_arg(run, text: str | None) -> float | None:
    """``--threshold``: checked (0 < P < 1, a two-class run); None when not given."""
    from .errors import DataError
    from .runs.folder import check_threshold

    if text is None:
        return None
    value = check_threshold(text, "--threshold")
    if run.threshold is None:
        pre = run.preprocessor
        what = (f"sorts into {len(pre.class_names)} classes" if pre.task == "classification"
                else "predicts a number")
        raise DataError(f"--threshold applies only to models that sort into two classes; this "
                        f"run {what}. Leave --threshold out.")
    return value


def _baseline_doc(evaluation) -> dict:
    """``evaluate --json``'s baseline: what ignoring the inputs would score, and the notes."""
    from .evaluation.baseline import baseline_of, headline_notes
    from .evaluation.yardstick import beside

    doc: dict = {}
    classic = beside(evaluation)
    if classic is not None:
        doc["yardstick"] = {"model": classic.name, "metric": classic.metric,
                            "value": classic.value, "yours": classic.model, "gap": classic.gap,
                            "n_fit": classic.n_fit, "n_test": classic.n_test,
                            "seconds": classic.seconds, "text": classic.text()}
    base = baseline_of(evaluation)
    if base is None:
        return doc
    return {**doc, "baseline": {"metric": base.metric, "value": base.value, "rule": base.rule,
                                "close": base.close},
            "notes": headline_notes(evaluation)}


def _cmd_evaluate(args) -> int:
    from .errors import DataError
    from .evaluation.baseline import headline_notes
    from .evaluation.evaluate import evaluate_run, rethreshold
    from .evaluation.yardstick import beside
    from .runs.folder import load_run

    run = load_run(args.run_dir)
    threshold = _threshold_arg(run, args.threshold)
    if args.save_threshold:
        if threshold is None:
            raise DataError("--save-threshold needs --threshold P (the threshold to save).")
        run.folder.set_threshold(threshold, "chosen with main.py evaluate --save-threshold")
        run = load_run(args.run_dir)
        _err(f"Saved the decision threshold {threshold:.2f} with {run.path.name}.")
    evaluation = evaluate_run(run, args.data, split=args.split)
    if threshold is not None:
        evaluation = rethreshold(evaluation, threshold)
    if args.json:
        # JSON has no NaN (e.g. ROC AUC with one class present): null instead.
        metrics = {k: (None if v != v else v) for k, v in evaluation.metrics.items()}
        doc = {"task": evaluation.task, "source": evaluation.source, "n": evaluation.n,
               "rows": evaluation.rows_text, "metrics": metrics}
        if evaluation.overlap is not None:
            doc["overlap"] = evaluation.overlap
        if evaluation.threshold is not None:
            doc["threshold"] = evaluation.threshold
        if evaluation.report is not None:
            doc["per_class"] = {
                name: {"precision": float(evaluation.report.precision[i]),
                       "recall": float(evaluation.report.recall[i]),
                       "f1": float(evaluation.report.f1[i]),
                       "support": int(evaluation.report.support[i])}
                for i, name in enumerate(evaluation.class_names)}
            doc["confusion_matrix"] = evaluation.confusion.tolist()
        doc.update(_baseline_doc(evaluation))
        print(json.dumps(doc, indent=2))
        return EXIT_OK
    print(f"{run.path.name}: {evaluation.task} on {evaluation.source}: {evaluation.rows_text}")
    for note in headline_notes(evaluation):
        print(f"  {note}")
    classic = beside(evaluation)
    if classic is not None:
        print(f"  {classic.text()}")
    if evaluation.threshold is not None:
        print(f"  says {evaluation.class_names[1]} from a probability of "
              f"{evaluation.threshold:.2f} (the decision threshold)")
    for key, value in evaluation.metrics.items():
        print(f"  {key:<16} {value:.4f}")
    if evaluation.report is not None:
        width = max(8, max(len(c) for c in evaluation.class_names))
        print(f"\n  {'class':<{width}}  precision  recall     f1  support")
        for i, name in enumerate(evaluation.class_names):
            r = evaluation.report
            print(f"  {name:<{width}}  {r.precision[i]:9.3f}  {r.recall[i]:6.3f}  {r.f1[i]:5.3f}  "
                  f"{r.support[i]:7d}")
    return EXIT_OK


# -- compare --------------------------------------------------------------------------------------
def _cmd_compare(args) -> int:
    from .errors import DataError
    from .evaluation.ensemble import Ensemble, compare_runs
    from .runs.folder import load_run

    if args.export and not (args.ensemble and args.out):
        raise DataError("--export needs --ensemble and --out FILE.")
    runs = [load_run(path) for path in args.run_dirs]
    comparison = compare_runs(runs, args.split, args.data, ensemble=args.ensemble)
    if args.json:
        print(json.dumps({"source": comparison.evaluations[0].source, "models": [
            {"name": name, "ensemble": i == comparison.ensemble,
             "metrics": {k: (None if v != v else v) for k, v in ev.metrics.items()}}
            for i, (name, ev) in enumerate(zip(comparison.names, comparison.evaluations))]},
            indent=2))
    else:
        keys = list(comparison.evaluations[0].metrics)
        width = max(len(n) for n in comparison.names)
        print(f"On the {comparison.evaluations[0].source} ({comparison.evaluations[0].n} rows):")
        print(f"{'':<{width}}  " + "  ".join(f"{k[:12]:>12}" for k in keys))
        for name, ev in zip(comparison.names, comparison.evaluations):
            print(f"{name:<{width}}  " + "  ".join(f"{ev.metrics.get(k, float('nan')):>12.4f}"
                                                  for k in keys))
    if args.export:
        from .export import export_ensemble, inputs_for_check

        x, checked_on = inputs_for_check(runs[0])
        report = export_ensemble(Ensemble(runs), args.export, args.out, x, checked_on)
        _err(report.summary)
    return EXIT_OK


# -- predict --------------------------------------------------------------------------------------
def _cmd_predict(args) -> int:
    from .errors import DataError
    from .evaluation.tryit import Predictor, predict_path
    from .runs.folder import load_run
    from .system.fileio import atomic_write_text

    run = load_run(args.run_dir)
    predictor = Predictor(run, _threshold_arg(run, args.threshold))
    if predictor.threshold is not None:
        origin = ("given with --threshold" if args.threshold is not None else
                  "saved with the run" if (run.config.get("decision") or {}).get("threshold")
                  is not None else "the default")
        _err(f"Says {run.preprocessor.class_names[1]} from a probability of "
             f"{predictor.threshold:.2f} ({origin}).")
    out = predict_path(predictor, args.input)
    text = out.to_csv(index=False)
    answer = predictor.answer(out)  # one input: also in words, "Not sure: ..." when unsure
    if answer:
        _err(answer)
    if args.out:
        atomic_write_text(args.out, text, error=DataError)
        _err(f"Wrote {len(out)} predictions to {args.out}")
    else:
        sys.stdout.write(text)
    return EXIT_OK


# -- export ---------------------------------------------------------------------------------------
def _cmd_export(args) -> int:
    from .data.tabular import read_table
    from .errors import DataError
    from .export import export_run, inputs_for_check
    from .runs.folder import load_run

    if args.format in ("hf", "adapter") or _is_language_model_run(args.run_dir):
        return cli_lm.export(args)
    run = load_run(args.run_dir)
    if args.format == "report":  # also when the run's data is gone: it says so inside
        return _export_report(run, args)
    if args.data:
        x = run.preprocessor.transform_features(read_table(args.data, min_columns=1))
        checked_on = f"rows of {Path(args.data).name}"
    else:
        x, checked_on = inputs_for_check(run)
    if args.format == "package":
        from .export.package import export_package

        package = export_package(run, args.out, x, checked_on=checked_on)
        if package.unchecked:  # written, but not shown to work: a script must not take it as ok
            _err(f"error: the package was written to {package.folder}, but its predict.py was "
                 f"not checked on raw rows: {package.unchecked}")
            return EXIT_BAD_INPUT
        print(package.summary)
        cli_lm.log_export(args, [package.folder])
        print(f"run it: pip install -r {package.folder / 'requirements.txt'} && python "
              f"{package.folder / 'predict.py'} INPUT --out predictions.csv")
        return EXIT_OK
    if args.quantize and args.format != "onnx":
        raise DataError("--quantize int8 works on ONNX exports: add --format onnx.")
    report = export_run(run, args.format, args.out, x, checked_on=checked_on)
    print(report.summary)
    print(f"preprocessing: {report.sidecar}")
    if args.quantize:
        from .export.compress import compress_run, compression_inputs

        test_x, test_y, calibration = compression_inputs(run)
        compressed = compress_run(run, report.path, test_x, test_y, calibration)
        print(compressed.table())
        for variant in compressed.variants[1:]:
            print(f"{variant.name}: {variant.path}")
    cli_lm.log_export(args, [report.path, report.sidecar])
    return EXIT_OK


def _export_report(run, args) -> int:
    import tempfile

    from .errors import DataError
    from .evaluation.report import build_report, write_report
    from .export.shrink import compare_smaller, derived_runs

    if not 0 <= args.price_per_hour < 1e6:
        raise DataError("--price-per-hour must be 0 or more.")
    smaller = derived_runs(run)
    if smaller:
        _err(f"Measuring {len(smaller)} smaller version(s) made from this run ...")
        compare_smaller(run, smaller)
    if args.quantize:
        from .export import export_run, inputs_for_check
        from .export.compress import compress_run, compression_inputs

        with tempfile.TemporaryDirectory() as tmp:
            x, checked_on = inputs_for_check(run)
            onnx = export_run(run, "onnx", Path(tmp) / "model.onnx", x, checked_on=checked_on)
            compress_run(run, onnx.path, *compression_inputs(run))
    # Every measurement is kept with the run (measured.json): the report shows those of its
    # weights, also the int8 versions measured by an earlier `export --quantize int8`.
    report = build_report(run, price_per_hour=args.price_per_hour, currency=args.currency)
    written = write_report(report, args.out, pdf=not args.no_pdf)
    for path in written:
        print(f"wrote {path}")
    cli_lm.log_export(args, written)
    return EXIT_OK


# -- shrink ---------------------------------------------------------------------------------------
def _cmd_shrink(args) -> int:
    from .export.shrink import ShrinkJob, compare_smaller
    from .runs.folder import load_run

    method = "prune" if args.prune is not None else "distill"
    job = ShrinkJob(args.run_dir, method, sparsity=args.prune or 0.5,
                    student=args.distill or "auto", epochs=args.epochs,
                    callbacks=[] if args.quiet else [ConsoleProgress()],
                    on_message=(lambda m: None) if args.quiet else _err)
    result = _run_job(job, args.quiet)
    report = compare_smaller(load_run(args.run_dir), [load_run(result.run_dir)])
    print(f"run: {result.run_dir}")
    print(f"status: {result.metrics['status']}")
    print(report.table())
    return EXIT_OK
