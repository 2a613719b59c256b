"""The words of machine learning the app uses, each in plain words (Help → Glossary).

Kept as data so the glossary dialog, tooltips and tests read the same sentences.
"""

from __future__ import annotations

#: term -> its meaning, for someone who does not work in machine learning.
GLOSSARY: dict[str, str] = {
    "Accuracy": "The share of examples the model gets right.",
    "Balanced accuracy": "Accuracy with every class counted equally, so a rare class matters "
                         "as much as a common one.",
    "Batch size": "How many examples the model looks at before it adjusts itself once. Larger "
                  "batches train faster on a GPU but need more memory.",
    "Calibration": "Whether the model's confidence can be trusted: of the answers it gives "
                   "with 80% confidence, about 80% should be right.",
    "Class": "One of the answers a classifier can give (for example 'cat' or 'dog').",
    "Classification": "Predicting which of several classes an example belongs to.",
    "Confusion matrix": "A table of true class against predicted class; the diagonal holds the "
                        "right answers, everything else shows which classes get mixed up.",
    "Cross-validation": "Training several times, each time testing on a different part of the "
                        "data, to see how much the score depends on luck.",
    "Data augmentation": "Showing the model slightly changed copies of the training images "
                         "(flipped, rotated, cropped) so it learns what does not matter.",
    "Distillation": "Training a smaller model to imitate a larger one; it is usually almost "
                    "as good and much smaller.",
    "Dropout": "Randomly switching off part of the network while training, so it cannot "
               "rely on any single connection; it fights overfitting.",
    "Early stopping": "Ending training when the validation score has stopped improving for a "
                      "few epochs, and keeping the best model seen.",
    "Epoch": "One pass of the model over all the training examples.",
    "F1 score": "A balance of precision and recall in one number (1 is perfect).",
    "GPU": "A graphics card. It does the arithmetic of training many times faster than the "
           "processor (CPU).",
    "Gradient clipping": "Capping how big a single adjustment can be, so one unusual batch "
                         "cannot throw training off course.",
    "Learning rate": "How big a step the model takes each time it adjusts itself. Too high and "
                     "training jumps around or fails; too low and it crawls.",
    "Log loss": "A penalty for being confidently wrong; lower is better.",
    "Loss": "The number the model tries to make small while it trains: how wrong it is.",
    "MAE": "Mean absolute error: how far off the predictions are on average, in the target's "
           "own units.",
    "Overfitting": "The model has started to memorise the training examples instead of "
                   "learning what generalises: training loss keeps falling while validation "
                   "loss rises.",
    "Parameters (weights)": "The numbers the model learns. More of them can capture more, but "
                            "need more data and memory.",
    "Precision": "Of the examples the model put in a class, the share that really belong "
                 "there.",
    "Pruning": "Setting the least important weights to zero and retraining briefly, so the "
               "model compresses much smaller.",
    "Quantisation (int8)": "Storing the weights as small whole numbers instead of decimals: "
                           "about 3-4x smaller, usually at almost no cost in accuracy.",
    "R²": "How much of the variation in the target the model explains: 1 is perfect, 0 is no "
          "better than always guessing the average.",
    "Recall": "Of the examples that really belong to a class, the share the model finds.",
    "Regression": "Predicting a number (a price, a temperature) rather than a class.",
    "RMSE": "Root mean squared error: like MAE, but large misses count more.",
    "ROC AUC": "How well the model ranks the right class above the wrong ones: 0.5 is "
               "chance, 1 is perfect.",
    "Saliency map": "The parts of an image that most influenced the model's answer, shown as "
                    "a heat map.",
    "Seed": "The starting number of the random choices; the same seed gives the same result.",
    "Test split": "Examples kept apart and used once, at the end, to measure how well the "
                  "model does on data it never saw.",
    "Training split": "The examples the model learns from.",
    "Validation split": "Examples checked after every epoch to pick the best model and to "
                        "notice overfitting; the model does not learn from them.",
    "Weight decay": "A gentle pull of the weights towards zero, which keeps the model simple "
                    "and fights overfitting.",
}


def glossary_html(filter_text: str = "") -> str:
    """The glossary as rich text, only the terms whose name or meaning contains
    *filter_text* (case-insensitive)."""
    import html

    needle = filter_text.strip().lower()
    rows = [f"<p><b>{html.escape(term)}</b> - {html.escape(text)}</p>"
            for term, text in sorted(GLOSSARY.items(), key=lambda kv: kv[0].lower())
            if not needle or needle in term.lower() or needle in text.lower()]
    return "".join(rows) or "<p><i>No term matches.</i></p>"


#: How a term may appear in the interface, besides its own name (lower case, word starts).
ALIASES: dict[str, tuple[str, ...]] = {
    "F1 score": ("f1",),
    "Parameters (weights)": ("parameters", "weights"),
    "Quantisation (int8)": ("int8", "quantis"),
    "Data augmentation": ("augment",),
    "Cross-validation": ("cross-validation", "k-fold"),
    "Log loss": ("log loss",),
    "Test split": ("test split", "test set"),
    "Training split": ("training split",),
    "Validation split": ("validation split", "validation"),
    "Saliency map": ("saliency", "grad-cam"),
    "Early stopping": ("early stopping", "stop early"),
    "Overfitting": ("overfit",),
    "Pruning": ("prun",),
    "Distillation": ("distil",),
    "Seed": ("seed",),
}


def _patterns():
    import re

    out = []
    for term in GLOSSARY:
        words = ALIASES.get(term, (term.split(" (")[0].lower(),))
        alternatives = "|".join(re.escape(w) for w in words)
        # Word starts only ("epoch" matches "Epochs", not "repochs"); "R²" and "MAE" are whole.
        out.append((term, re.compile(rf"(?<![\w-])(?:{alternatives})", re.IGNORECASE)))
    return out


_PATTERNS = None


def terms_in(text: str) -> list[str]:
    """The glossary terms *text* mentions, in glossary order."""
    global _PATTERNS
    if _PATTERNS is None:
        _PATTERNS = _patterns()
    return [term for term, pattern in _PATTERNS if pattern.search(text)]


def tooltip_for(terms: list[str]) -> str:
    """A tooltip that explains *terms* in plain words (rich text)."""
    import html

    return "<br>".join(f"<b>{html.escape(t)}</b>: {html.escape(GLOSSARY[t])}" for t in terms)


def visible_text(widget) -> str:
    """The words a user reads on *widget* (label, button, check box, group box title)."""
    from PySide6.QtWidgets import QAbstractButton, QGroupBox, QLabel

    if isinstance(widget, QLabel):
        if widget.textFormat() == widget.textFormat().RichText or "<" in widget.text():
            from PySide6.QtGui import QTextDocument

            doc = QTextDocument()
            doc.setHtml(widget.text())
            return doc.toPlainText()
        return widget.text()
    if isinstance(widget, QAbstractButton):
        return widget.text()
    if isinstance(widget, QGroupBox):
        return widget.title()
    return ""


def explain_terms(root) -> int:
    """Give every label, button and group box under *root* that names an ML term without
    explaining it a tooltip with the glossary's words (and the field a label names, too).
    Returns how many tooltips were set. Long texts (paragraphs) explain themselves and are
    left alone."""
    from PySide6.QtWidgets import QAbstractButton, QGroupBox, QLabel, QWidget

    count = 0
    for widget in root.findChildren(QWidget):
        if not isinstance(widget, (QLabel, QAbstractButton, QGroupBox)) or widget.toolTip():
            continue
        text = visible_text(widget)
        if not text or len(text) > 80:
            continue
        terms = terms_in(text)
        if not terms:
            continue
        tip = tooltip_for(terms)
        widget.setToolTip(tip)
        count += 1
        buddy = widget.buddy() if isinstance(widget, QLabel) else None
        if buddy is not None and not buddy.toolTip():
            buddy.setToolTip(tip)
    return count
