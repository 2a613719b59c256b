"""The report of a language-model run, for people who do not work in machine learning: what
was tuned on what and how, perplexity before and after, the curves, and the base and
fine-tuned model's answers to the same questions side by side. The same :class:`Report` as a
table run's, so it is one self-contained HTML page and, where a PDF writer is registered, a
PDF beside it."""

from __future__ import annotations

import math
import os
from pathlib import Path

from ..errors import RunError
from ..runs.folder import RunFolder
from ..runs.project import LM_DEFAULT_LR
from .report import (
    Report,
    Section,
    charts_html,
    escape,
    line_chart,
    table_html,
    versions,
    write_report,
)


def perplexity_text(value) -> str:
    """A perplexity as the report and the app show it (``None``: infinite)."""
    return f"{value:,.2f}" if isinstance(value, (int, float)) else "infinite"


def change_text(before, after) -> str:
    """The relative change from *before* to *after* (``-32%``), or ``""`` without both."""
    return (f"{(after - before) / before:+.0%}" if isinstance(before, float)
            and isinstance(after, float) and before else "")


#: The libraries a language-model run's numbers depend on.
LM_PACKAGES = ("torch", "transformers", "peft", "tokenizers", "safetensors", "numpy")


def said(answer) -> str:
    """An answer on one line, as the app and the report show it; one with no words says so."""
    return " ".join(str(answer).split()) or "(no words: only spaces or the end)"


def _perplexity_rows(metrics: dict) -> list[list[str]]:
    rows = []
    for split, name in (("val", "Validation examples"), ("test", "Test examples (never "
                                                                 "trained on)")):
        part = metrics.get(split) or {}
        before, after = part.get("perplexity_before"), part.get("perplexity")
        rows.append([name, perplexity_text(before), perplexity_text(after),
                     change_text(before, after)])
    return rows


def build_lm_report(folder: RunFolder) -> Report:
    """The report of the finished language-model run in *folder* (see the module).

    Raises
    ------
    RunError
        The run is not a language-model run or has not finished.
    """
    if not folder.is_language_model or not folder.read_metrics():
        raise RunError(f"{folder.title} has no finished language-model fine-tuning to report "
                       f"on.")
    metrics, history = folder.read_metrics(), folder.read_history()
    test = metrics.get("test") or {}
    report = Report(folder.title, f"Fine-tuned {folder.info.get('created', '')[:10]} on "
                                  f"{metrics.get('device', '')}")
    before, after = perplexity_text(test.get("perplexity_before")), perplexity_text(
        test.get("perplexity"))
    report.numbers.update(test_perplexity=after, test_perplexity_before=before)
    change = change_text(test.get("perplexity_before"), test.get("perplexity"))
    n_test = (metrics.get("examples") or {}).get("test", 0)
    report.sections.append(Section(
        "Summary", f"On {n_test} test examples it never trained on, the model's perplexity "
                   f"went from {before} before fine-tuning to {after}"
                   + (f" ({change})." if change else "."),
        "<p>Perplexity says how surprised the model is by the answers it should give, on "
        "average: lower is better, and 1 would mean it always expects exactly the right "
        "words.</p>" + table_html(["", "before", "after", "change"], _perplexity_rows(metrics),
                              numeric=(1, 2, 3))))
    report.sections.append(_about(folder, metrics))
    report.sections.append(_training(report, history, metrics))
    compare = [[c["prompt"], c["reference"], said(c["base"]), said(c["tuned"])]
               for c in metrics.get("compare") or []]
    report.sections.append(Section(
        "The same questions, before and after", "Test questions the model never trained on, "
        "answered by the base model and by the fine-tuned one (greedy: the likeliest words).",
        table_html(["Question", "Expected", "Base model", "Fine-tuned"], compare)))
    samples = [[h["epoch"], said(h.get("sample", ""))] for h in history]
    report.sections.append(Section(
        "What it answered after each epoch", "The same prompt, answered after every epoch: "
        "how the model learned.",
        f"<p>The prompt: {escape(folder.info.get('sample_prompt', ''))}</p>"
        + table_html(["Epoch", "Answer"], samples, numeric=(0,))))
    report.sections.append(Section("Reproducibility", "The software this run was made with.",
                                   table_html(["", "version"], versions(LM_PACKAGES))))
    return report


def _about(folder: RunFolder, metrics: dict) -> Section:
    settings = folder.settings()
    lm, base = settings["language_model"], settings.get("backbone") or {}
    rank = int(lm["lora_rank"])
    how = (f"LoRA adapters (rank {rank}, alpha {int(lm.get('lora_alpha') or 2 * rank)})"
           if lm["mode"] == "lora" else "every weight (full fine-tuning)")
    lr = float(lm.get("lr") or LM_DEFAULT_LR[lm["mode"]])
    now = float(folder.info.get("lr_now") or lr)
    examples = metrics.get("examples") or {}
    rows = [["Base model", f"{base.get('name', '')} ({int(base.get('params', 0)) / 1e6:,.1f} "
                           f"million parameters)"],
            ["Examples", f"{Path(settings['data']['source']).name}: {examples.get('train', 0)}"
                         f" to learn from, {examples.get('val', 0)} to choose the best epoch, "
                         f"{examples.get('test', 0)} kept apart for this report"],
            ["Trained", how],
            ["Epochs", f"{metrics.get('epochs', 0)} (epoch {metrics.get('best_epoch', 0)} "
                       f"kept: the lowest validation perplexity)"],
            ["Learning rate", f"{lr:g}" + (f", then {now:g} after the loss became NaN"
                                           if now != lr else "")],
            ["Longest example", f"{lm.get('max_length', 0)} tokens"],
            ["Time", f"{metrics.get('seconds', 0):,.0f} s on {metrics.get('device', '')}, "
                     f"{metrics.get('tokens_per_second', 0):,.0f} tokens a second"]]
    return Section("Data and model", "What was tuned, on what, and how.",
                   table_html(["", "setting"], rows))


def _training(report: Report, history: list[dict], metrics: dict) -> Section:
    best = metrics.get("best_epoch")
    report.images["lm_loss.png"] = line_chart(
        {"training": [(h["epoch"], h["loss"]) for h in history if _real(h.get("loss"))]},
        "Error while training (loss)", "epoch", best)
    report.images["lm_perplexity.png"] = line_chart(
        {"validation": [(h["epoch"], h["val_perplexity"]) for h in history
                        if _real(h.get("val_perplexity"))]},
        "Validation perplexity", "epoch", best)
    return Section("Training", "How the error fell as the model practised; validation "
                   "perplexity is on examples it did not train on (the green line: the kept "
                   "epoch).", charts_html("lm_loss.png", "lm_perplexity.png"))


def _real(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value < 1e12


def write_lm_report(folder: RunFolder, out: str | os.PathLike, pdf: bool = True) -> list[Path]:
    """Write the report to *out* (``.html`` added if missing) and, with *pdf* and a PDF
    writer registered, a PDF beside it; returns the files written."""
    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        out = out.with_name(out.name + ".html")
    return write_report(build_lm_report(folder), out, pdf=pdf)
