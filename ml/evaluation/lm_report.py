"""The report of a language-model run: one self-contained HTML page for people who do not work
in machine learning - what was tuned on what, how, perplexity before and after, and the base
and fine-tuned model's answers to the same questions side by side."""

from __future__ import annotations

import html
import os
from pathlib import Path

from ..errors import RunError
from ..runs.folder import RunFolder
from ..system.fileio import atomic_write_text

STYLE = ("body{font-family:system-ui,sans-serif;max-width:60em;margin:2em auto;color:#1f2328}"
         "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #d0d7de;"
         "padding:.4em .7em;vertical-align:top;text-align:left}th{background:#f6f8fa}"
         ".big{font-size:1.6em;font-weight:600}")


def perplexity_text(value) -> str:
    """A perplexity as the report and the app show it (``None``: infinite)."""
    return f"{value:,.2f}" if isinstance(value, (int, float)) else "infinite"


def change_text(before, after) -> str:
    """The relative change from *before* to *after* (``-32%``), or ``""`` without both."""
    return (f"{(after - before) / before:+.0%}" if isinstance(before, float)
            and isinstance(after, float) and before else "")


def _rows(rows: list[tuple]) -> str:
    return "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                   for row in rows)


def _perplexity_table(metrics: dict) -> str:
    rows = []
    for split, name in (("val", "Validation examples"), ("test", "Test examples (never "
                                                                 "trained on)")):
        part = metrics.get(split) or {}
        before, after = part.get("perplexity_before"), part.get("perplexity")
        rows.append((name, perplexity_text(before), perplexity_text(after),
                     change_text(before, after)))
    return ("<table><tr><th></th><th>before</th><th>after</th><th>change</th></tr>"
            + _rows(rows) + "</table>")


def lm_report_html(folder: RunFolder) -> str:
    """The report's page (see the module)."""
    if not folder.is_language_model or not folder.read_metrics():
        raise RunError(f"{folder.title} has no finished language-model fine-tuning to report "
                       f"on.")
    metrics, settings = folder.read_metrics(), folder.settings()
    lm, base = settings["language_model"], settings.get("backbone") or {}
    how = (f"LoRA adapters (rank {lm['lora_rank']})" if lm["mode"] == "lora"
           else "every weight (full fine-tuning)")
    data = Path(settings["data"]["source"]).name
    examples = metrics.get("examples") or {}
    compare = _rows([(c["prompt"], c["reference"], c["base"], c["tuned"])
                     for c in metrics.get("compare") or []])
    samples = _rows([(h["epoch"], h.get("sample", "")) for h in folder.read_history()])
    test = metrics.get("test") or {}
    return f"""<!DOCTYPE html><html><head><meta charset="utf-8">
<title>{html.escape(folder.title)}</title><style>{STYLE}</style></head><body>
<h1>{html.escape(folder.title)}</h1>
<p>The language model <b>{html.escape(str(base.get('name', '')))}</b>
({int(base.get('params', 0)) / 1e6:,.1f} million parameters) was fine-tuned on
<b>{html.escape(data)}</b>: {examples.get('train', 0)} examples to learn from,
{examples.get('val', 0)} to choose the best epoch and {examples.get('test', 0)} kept apart for
this report. It trained {html.escape(how)} for {metrics.get('epochs', 0)} epochs
({metrics.get('seconds', 0):,.0f} s on {html.escape(str(metrics.get('device', '')))},
{metrics.get('tokens_per_second', 0):,.0f} tokens a second); epoch
{metrics.get('best_epoch', 0)} was kept.</p>
<p class="big">Test perplexity {perplexity_text(test.get('perplexity_before'))} &rarr;
{perplexity_text(test.get('perplexity'))}</p>
<p>Perplexity says how surprised the model is by the answers it should give, on average:
lower is better, and 1 would mean it always expects exactly the right words.</p>
{_perplexity_table(metrics)}
<h2>The same questions, before and after</h2>
<table><tr><th>Question</th><th>Expected</th><th>Base model</th><th>Fine-tuned</th></tr>
{compare}</table>
<h2>What it answered after each epoch</h2>
<p>The question: {html.escape(str(folder.info.get('sample_prompt', '')))}</p>
<table><tr><th>Epoch</th><th>Answer</th></tr>{samples}</table>
</body></html>
"""


def write_lm_report(folder: RunFolder, out: str | os.PathLike) -> Path:
    """Write the report to *out* (``.html`` added if missing); returns its path."""
    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        out = out.with_name(out.name + ".html")
    atomic_write_text(out, lm_report_html(folder), error=RunError)
    return out
