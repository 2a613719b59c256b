"""What a model that learned nothing would score, so a headline number is never read alone.

A model that always answers the most common class of a set (its "no-information rate") or
always predicts the training mean needs no data at all. Every headline metric -- the Train
banner, the Evaluate cards, the report, ``main.py evaluate`` -- is shown beside that score, with
a warning when the model is within a few points of it. For two imbalanced classes the share of
right answers hides what matters, so :func:`rare_class_sentence` says how many of the rare
class the model caught.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Accuracy within this many points of always answering the most common class is a warning:
#: on imbalanced data such a model has learned little the class counts did not already say.
CLOSE_POINTS = 3.0
#: A typical error within this share of the mean-predictor's is a warning.
CLOSE_ERROR_SHARE = 0.9
#: Two classes count as imbalanced when the rarer is under this share of the rows.
RARE_SHARE = 0.35


@dataclass(frozen=True)
class Baseline:
    """The model's headline metric against a model that ignores its inputs."""

    #: "accuracy" (a share, higher is better) or "mae" (target units, lower is better).
    metric: str
    #: The baseline's score on the same rows.
    value: float
    #: The model's score on those rows.
    model: float
    #: What the baseline does, in plain words ("always answering “no”").
    rule: str

    @property
    def close(self) -> bool:
        """Whether the model is no better, or only a few points better, than the baseline."""
        if self.metric == "accuracy":
            return 100 * (self.model - self.value) < CLOSE_POINTS
        return self.model > CLOSE_ERROR_SHARE * self.value

    def text(self) -> str:
        """One sentence comparing the model with the baseline, a warning when it is close."""
        if self.metric == "accuracy":
            score, mine = f"{100 * self.value:.1f}%", f"{100 * self.model:.1f}%"
            gap = 100 * (self.model - self.value)
            if gap <= 0:
                return (f"Warning: {self.rule} would score {score}, as good as this model "
                        f"({mine}): it has learned nothing useful yet.")
            if self.close:
                return (f"Warning: {self.rule} would already score {score}; this model "
                        f"({mine}) is only {gap:.1f} points better.")
            return f"For comparison, {self.rule} would score {score}."
        score, mine = f"{self.value:.4g}", f"{self.model:.4g}"
        if self.close:
            return (f"Warning: {self.rule} would have a typical error of {score}, barely worse "
                    f"than this model's {mine}.")
        return f"For comparison, {self.rule} would have a typical error of {score}."


def baseline_of(evaluation) -> Baseline | None:
    """The :class:`Baseline` of an :class:`~ml.evaluation.evaluate.Evaluation`; None for an
    empty set. A regression baseline predicts the training mean (this set's own mean when the
    evaluation does not know it)."""
    train_mean = evaluation.target_mean
    y = np.asarray(evaluation.y_true)
    if len(y) == 0:
        return None
    if evaluation.task == "classification":
        counts = np.bincount(y.astype(np.int64), minlength=len(evaluation.class_names))
        common = int(np.argmax(counts))
        model = float(np.mean(np.asarray(evaluation.y_pred) == y))
        return Baseline("accuracy", float(counts[common] / len(y)), model,
                        f"always answering “{evaluation.class_names[common]}”")
    y = y.astype(np.float64)
    mean = float(np.mean(y)) if train_mean is None else float(train_mean)
    model = float(np.mean(np.abs(y - np.asarray(evaluation.y_pred, dtype=np.float64))))
    return Baseline("mae", float(np.mean(np.abs(y - mean))), model,
                    f"always predicting the {'training ' if train_mean is not None else ''}"
                    f"average ({mean:.4g})")


def rare_class_sentence(evaluation) -> str:
    """For two imbalanced classes: how many rows of the rare class the model caught, and how
    many false alarms it raised ("Of 106 rows where churn is “yes”, it caught 65 (61%) ...").
    Empty for other evaluations."""
    if evaluation.task != "classification" or len(evaluation.class_names) != 2:
        return ""
    y, pred = np.asarray(evaluation.y_true), np.asarray(evaluation.y_pred)
    counts = np.bincount(y.astype(np.int64), minlength=2)
    rare = int(np.argmin(counts))
    if counts[rare] == 0 or counts[rare] / len(y) >= RARE_SHARE:
        return ""
    name, target = evaluation.class_names[rare], evaluation.target
    caught = int(np.sum((y == rare) & (pred == rare)))
    alarms = int(np.sum((y != rare) & (pred == rare)))
    where = f"where {target} is “{name}”" if target else f"of class “{name}”"
    return (f"Of {counts[rare]:,} {evaluation.unit} {where}, it caught {caught:,} "
            f"({100 * caught / counts[rare]:.0f}%) and raised {alarms:,} false "
            f"alarm{'' if alarms == 1 else 's'} among the other {counts[1 - rare]:,}.")


def never_predicted(evaluation) -> list[str]:
    """The classes present among the evaluated rows that the model never answers."""
    if evaluation.task != "classification" or not len(evaluation.y_true):
        return []
    y, pred = np.asarray(evaluation.y_true, np.int64), np.asarray(evaluation.y_pred, np.int64)
    present = np.bincount(y, minlength=len(evaluation.class_names)) > 0
    answered = np.bincount(pred, minlength=len(evaluation.class_names)) > 0
    return [evaluation.class_names[i] for i in np.flatnonzero(present & ~answered)]


def never_predicted_sentence(evaluation) -> str:
    """A warning naming the classes the model never answers although these rows hold them,
    and what to try; empty when it answers every class present."""
    missing = never_predicted(evaluation)
    if not missing:
        return ""
    y = np.asarray(evaluation.y_true, np.int64)
    counts = np.bincount(y, minlength=len(evaluation.class_names))
    named = ", ".join(f"“{name}” ({counts[evaluation.class_names.index(name)]:,} of these "
                      f"{evaluation.unit})" for name in missing[:3])
    more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
    hint = (" or a lower decision threshold" if len(evaluation.class_names) == 2 else "")
    return (f"Warning: the model never answers {named}{more}. Try class weights “balanced” on "
            f"the Training tab{hint}.")


def headline_notes(evaluation) -> list[str]:
    """The sentences to show beside a headline metric: the rare class first (it is what
    matters on imbalanced data), a class never answered, then the baseline comparison."""
    notes = [rare_class_sentence(evaluation), never_predicted_sentence(evaluation)]
    base = baseline_of(evaluation)
    if base is not None:
        notes.append(base.text())
    return [n for n in notes if n]
