"""The language-model commands of ``main.py``: ``train --task causal-lm``, ``generate`` and
``export --format hf|adapter`` (see :mod:`ml.jobs.causal`).

As in :mod:`ml.cli`: progress on stderr, results on stdout, bad input one line and status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import TrainDeskError

#: ``train`` options that belong to table, image and text models, not to a language model.
NOT_FOR_LM = ("project", "target", "sheet", "delimiter", "encoding", "decimal", "image_size",
              "image_mode", "image_loading", "augment", "max_vocab", "class_weights", "model",
              "model_spec", "init_from", "freeze_epochs", "head_epochs", "hidden", "dropout",
              "optimizer", "momentum", "weight_decay", "schedule", "warmup_epochs", "loss",
              "label_smoothing", "early_stopping", "min_delta", "monitor", "oom_retry",
              "refit", "folds")


def add_train_args(p: argparse.ArgumentParser) -> None:
    """The options ``train --task causal-lm`` adds to ``train``'s own."""
    p.add_argument("--lora-alpha", type=int, help="causal-lm, LoRA: the adapters' scale is "
                   "alpha / rank (default: twice the rank)")
    p.add_argument("--lora-dropout", type=float, help="causal-lm, LoRA: dropout on the "
                   "adapters' input (default 0.05)")
    p.add_argument("--lora-targets", help="causal-lm, LoRA: the linear layers to adapt, e.g. "
                   "q_proj,v_proj (default: the model type's attention projections)")
    p.add_argument("--gradient-checkpointing", action="store_true",
                   help="causal-lm: recompute activations in the backward pass (less memory, "
                        "about a third more time)")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"],
                   help="causal-lm: autocast on a GPU (auto: bf16 where supported, else fp16; "
                        "float32 on the CPU)")
    p.add_argument("--sample-prompt", help="causal-lm: what the model is asked after every "
                   "epoch (default: the first test example's question)")


def add_generate(sub) -> None:
    p = sub.add_parser("generate", help="a fine-tuned language model's answer to a prompt, "
                                        "printed as it is written")
    p.add_argument("run_dir")
    p.add_argument("--prompt", required=True, help="the question (or, for a model tuned on "
                   "plain text, the text to go on with)")
    p.add_argument("--max-new-tokens", type=int, default=128, help="the longest answer, in "
                   "tokens (default 128)")
    p.add_argument("--temperature", type=float, default=0.7, help="0: always the most likely "
                   "token; higher: more varied (default 0.7)")
    p.add_argument("--top-p", type=float, default=0.9, help="sample among the most likely "
                   "tokens whose probabilities add up to this (default 0.9)")
    p.add_argument("--seed", type=int, default=0, help="the same seed gives the same answer")
    p.add_argument("--base", action="store_true", help="answer with the base model, before "
                   "fine-tuning, to compare")
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto")


def config_from_args(args):
    """The :class:`~ml.runs.project.LanguageModelConfig` that ``train`` *args* describe."""
    from .runs.project import LanguageModelConfig

    given = [f"--{name.replace('_', '-')}" for name in NOT_FOR_LM
             if getattr(args, name, None) not in (None, False)]
    if given:
        raise TrainDeskError(f"{given[0]} does not apply to --task causal-lm; leave it out.")
    if not args.backbone or not args.data:
        raise TrainDeskError("--task causal-lm needs --backbone MODEL_FOLDER (a causal language "
                             "model) and --data FILE (chat, instruction or text examples).")
    if args.lr == "find" or args.find_lr_only:
        raise TrainDeskError("The learning-rate test is for table, image and text models; give "
                             "--task causal-lm a rate (--lr 2e-4) or leave --lr out.")
    if args.mode not in (None, "lora", "full"):
        raise TrainDeskError(f"--mode {args.mode} is for backbones under a new head; a language "
                             f"model trains with --mode lora or --mode full.")
    config = LanguageModelConfig(backbone=str(Path(args.backbone).expanduser()))
    for option, field_name in (("mode", "mode"), ("epochs", "epochs"), ("lr", "lr"),
                               ("batch_size", "batch_size"), ("max_length", "max_length"),
                               ("lora_rank", "lora_rank"), ("lora_alpha", "lora_alpha"),
                               ("lora_dropout", "lora_dropout"), ("precision", "precision"),
                               ("sample_prompt", "sample_prompt"), ("seed", "seed"),
                               ("device", "device")):
        value = getattr(args, option, None)
        if value is not None:
            setattr(config, field_name, value)
    if args.lora_targets:
        config.lora_targets = [t.strip() for t in args.lora_targets.split(",") if t.strip()]
    config.gradient_checkpointing = bool(args.gradient_checkpointing)
    config.validate()
    return config


def _progress(args):
    """Per-epoch lines on stderr (nothing with ``--quiet``)."""
    def on_epoch(epoch: int, logs: dict) -> None:
        if args.quiet:
            return
        line = f"epoch {logs['epoch']}  loss {logs['loss']:.4f}"
        if "val_perplexity" in logs:
            line += f"  val perplexity {logs['val_perplexity']:.3f}"
        print(line + f"  {logs['tokens_per_second']:,.0f} tokens/s", file=sys.stderr)
        print(f"  sample: {' '.join(str(logs.get('sample', '')).split())[:160]}",
              file=sys.stderr)

    return on_epoch


def _say(args):
    return (lambda text: None) if args.quiet else (
        lambda text: print(text, file=sys.stderr))


def train(args, run_job, exit_status=lambda job, result: 0) -> int:
    """``train --task causal-lm`` (or ``--resume`` of a language-model run)."""
    from .jobs.causal import CausalLMJob
    from .training import distributed

    group = distributed.current()
    if group is not None and group.world > 1:
        raise TrainDeskError("Fine-tuning a language model runs in one process; start it "
                             "without torchrun (or with --nproc-per-node=1 on one node).")

    if args.resume:
        if args.data or args.backbone or args.lr is not None:
            raise TrainDeskError("--resume continues a run with its own model, data and rate; "
                                 "leave --backbone, --data and --lr out.")
        from .errors import NothingToDo

        try:
            job = CausalLMJob.resume(Path(args.resume).expanduser(), epochs=args.epochs,
                                     name=args.name or "", on_epoch=_progress(args),
                                     on_message=_say(args))
        except NothingToDo as done:  # a preemptible job started again after it finished
            print(done)
            return 0
    else:
        job = CausalLMJob(config_from_args(args), args.data,
                          run_dir=Path(args.out).expanduser() if args.out else None,
                          name=args.name or "", on_epoch=_progress(args),
                          on_message=_say(args))
    result = run_job(job, args.quiet)
    print(f"run: {result.run_dir}")
    print(f"name: {result.name}")
    print(f"status: {result.status}")
    test = result.metrics.get("test") or {}
    if test and result.status == "finished":
        print(f"test: perplexity {_number(test['perplexity'])} (before fine-tuning "
              f"{_number(test['perplexity_before'])})")
    return exit_status(job, result)


def _number(value: float | None) -> str:
    return "infinite" if value is None else f"{value:.4f}"


def generate_answer(args) -> int:
    """``generate RUN --prompt TEXT``: the answer streamed to stdout."""
    from .evaluation.generate import Continue, Sampling, generate
    from .jobs.causal import data_kind, load_tuned

    if not 1 <= args.max_new_tokens <= 100_000:
        raise TrainDeskError("--max-new-tokens must be 1 or more.")
    if not 0.0 <= args.temperature <= 10.0 or not 0.0 < args.top_p <= 1.0:
        raise TrainDeskError("--temperature must be 0 to 10 and --top-p above 0 and at most 1.")
    model, tokenizer, folder = load_tuned(args.run_dir, args.device)
    prompt = Continue(args.prompt) if data_kind(folder) == "text" else args.prompt
    sampling = Sampling(max_new_tokens=args.max_new_tokens, temperature=args.temperature,
                        top_p=args.top_p, seed=args.seed)

    def say(piece: str) -> None:
        sys.stdout.write(piece)
        sys.stdout.flush()

    if args.base and hasattr(model, "disable_adapter"):
        with model.disable_adapter():
            generate(model, tokenizer, prompt, sampling, on_text=say)
    elif args.base:
        raise TrainDeskError("--base answers with a LoRA run's base model; this run tuned "
                             "every weight, so its base is the model folder itself.")
    else:
        generate(model, tokenizer, prompt, sampling, on_text=say)
    sys.stdout.write("\n")
    return 0


def log_export(args, paths: list) -> None:
    """``export ... --mlflow``: the exported files join the run's MLflow run."""
    if getattr(args, "mlflow", None) is not None:
        from .jobs.tracking import log_run

        print(log_run(args.run_dir, args.mlflow or None,
                      extra=[Path(p) for p in paths if p and Path(p).exists()]).sentence())


def export(args) -> int:
    """``export RUN --format hf|adapter|report --out PATH`` for a language-model run."""
    from .export.causal import save_adapter, save_merged
    from .jobs.causal import check_ids, load_tuned

    if args.format == "report":
        from .evaluation.lm_report import write_lm_report
        from .runs.folder import RunFolder

        written = write_lm_report(RunFolder.open(args.run_dir), args.out,
                                  pdf=not getattr(args, "no_pdf", False))
        for path in written:
            print(f"wrote {path}")
        log_export(args, written)
        return 0
    if args.format not in ("hf", "adapter"):
        raise TrainDeskError(f"A language-model run exports as --format hf (a merged model "
                             f"folder), --format adapter (its LoRA adapter) or --format "
                             f"report, not {args.format}.")
    model, tokenizer, folder = load_tuned(args.run_dir, "cpu")
    if args.format == "adapter":
        out = save_adapter(model, Path(args.out).expanduser())
        print(f"adapter: {out} (load it with peft's PeftModel.from_pretrained on "
              f"{Path(folder.settings()['language_model']['backbone']).name})")
        log_export(args, [out])
        return 0
    gap = save_merged(model, tokenizer, Path(args.out).expanduser(), check_ids(folder, tokenizer))
    print(f"model folder: {args.out} (loads with AutoModelForCausalLM.from_pretrained; "
          f"checked: loaded back, its logits differ from the run's model by {gap:.2g} at most)")
    log_export(args, [Path(args.out).expanduser()])
    return 0
