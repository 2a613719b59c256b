"""Plain-language readings of a training history, for the live curves and the report."""

from __future__ import annotations

import math
from collections.abc import Sequence

#: A steady rise needs this many epochs after the best one, ...
STEADY_EPOCHS = 3
#: ... this share of the epoch-to-epoch steps since the best going up, ...
STEADY_SHARE = 2 / 3
#: ... and a straight line through them whose slope is this many standard errors above zero.
STEADY_T = 2.0


def overfitting(history: Sequence[dict], *, patience: int = 2, tolerance: float = 0.05
                ) -> dict | None:
    """Whether the model has started to memorise the training data.

    Two readings count, both only while the training loss has not risen above its value at
    the best epoch (when both rise, training itself has gone wrong - a learning rate too
    high - which is not overfitting):

    * a jump: the validation loss has been above its lowest value for at least *patience*
      epochs in a row while the training loss kept falling below what it was at that point;
      a rise counts when it is more than *tolerance* of the lowest value;
    * a steady rise (:func:`steady_rise`): for at least :data:`STEADY_EPOCHS` epochs after
      the best, the validation loss has mostly gone up, along a trend clearly above its
      epoch-to-epoch noise - even when each step is small.

    Either rise must also be more than 2% of how far the validation loss came down from the
    first epoch, so wobbles of a loss near zero (a solved problem) do not count.

    Returns
    -------
    dict or None
        ``{"since": epoch after the best, "best_epoch", "epochs": how many, "kind": "jump" or
        "steady", "message"}`` or None when there is no sign of it.
    """
    points = [(int(h["epoch"]), float(h["loss"]), float(h["val_loss"])) for h in history
              if "val_loss" in h and "loss" in h
              and math.isfinite(h["val_loss"]) and math.isfinite(h["loss"])]
    if len(points) < patience + 1:
        return None
    best_i = min(range(len(points)), key=lambda i: points[i][2])
    best_epoch, best_train, best_val = points[best_i]
    after = points[best_i + 1:]
    if len(after) < patience:
        return None
    recent = after[-patience:]
    descent = points[0][2] - best_val
    floor = max(tolerance * best_val, 0.02 * descent)
    rising = all(v - best_val > floor for _, _, v in recent)
    falling = all(t < best_train for _, t, _ in recent) and recent[-1][1] <= recent[0][1]
    if rising and falling:
        return _finding("jump", best_epoch, len(after))
    train_held = after[-1][1] <= best_train * (1 + tolerance)
    if train_held and steady_rise([v for _, _, v in points[best_i:]], 0.02 * descent):
        return _finding("steady", best_epoch, len(after))
    return None


def steady_rise(values: Sequence[float], floor: float = 0.0) -> bool:
    """Whether *values* (a validation loss from its lowest epoch on) rise steadily.

    That is: at least :data:`STEADY_EPOCHS` values after the first; at least
    :data:`STEADY_SHARE` of the steps between them go up; the least-squares slope through them
    is more than :data:`STEADY_T` standard errors above zero (the trend is beyond the noise
    around it); and the last values stand above the first by more than *floor* and by more
    than 1% of it.
    """
    n = len(values)
    if n < STEADY_EPOCHS + 1:
        return False
    ups = sum(1 for a, b in zip(values, values[1:]) if b > a)
    if ups < STEADY_SHARE * (n - 1):
        return False
    tail = values[-max(1, (n - 1) // 2):]
    rise = sum(tail) / len(tail) - values[0]
    if rise <= max(floor, 0.01 * abs(values[0])):
        return False
    xs = range(n)
    x_mean, y_mean = (n - 1) / 2, sum(values) / n
    sxx = sum((x - x_mean) ** 2 for x in xs)
    slope = sum((x - x_mean) * (y - y_mean) for x, y in zip(xs, values)) / sxx
    residual = sum((y - y_mean - slope * (x - x_mean)) ** 2 for x, y in zip(xs, values))
    error = math.sqrt(residual / (n - 2) / sxx)
    return slope > 0 and (error == 0 or slope / error > STEADY_T)


def _finding(kind: str, best_epoch: int, epochs: int) -> dict:
    s = "s" if epochs != 1 else ""
    if kind == "jump":
        message = (f"The model has started to memorise the training data (overfitting): the "
                   f"validation loss has risen for {epochs} epoch{s} since epoch {best_epoch} "
                   f"while the training loss kept falling. The best epoch's weights are the "
                   f"ones to keep; early stopping, more dropout or more data would help.")
    else:
        message = (f"The model is getting worse on examples it does not learn from "
                   f"(overfitting): the validation loss has risen steadily for {epochs} "
                   f"epoch{s} since its lowest point at epoch {best_epoch}, while the training "
                   f"loss did not rise. Training longer will not help; keep the weights of "
                   f"epoch {best_epoch}, and try early stopping, more dropout or more data.")
    return {"since": best_epoch + 1, "best_epoch": best_epoch, "epochs": epochs, "kind": kind,
            "message": message}
