"""Plain-language readings of a training history, for the live curves and the report."""

from __future__ import annotations

import math
from collections.abc import Sequence


def overfitting(history: Sequence[dict], *, patience: int = 2, tolerance: float = 0.05
                ) -> dict | None:
    """Whether the model has started to memorise the training data.

    That is the case when the validation loss has risen above its lowest value for at least
    *patience* epochs in a row while the training loss has kept falling below what it was at
    that lowest point. A rise counts when it is more than *tolerance* of the lowest value and
    more than 2% of how far the validation loss came down from the first epoch - so wobbles
    of a loss near zero (a solved problem) do not count.

    Returns
    -------
    dict or None
        ``{"since": epoch after the best, "best_epoch", "epochs": how many, "message"}`` or
        None when there is no sign of it.
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
    floor = max(tolerance * best_val, 0.02 * (points[0][2] - best_val))
    rising = all(v - best_val > floor for _, _, v in recent)
    falling = all(t < best_train for _, t, _ in recent) and recent[-1][1] <= recent[0][1]
    if not (rising and falling):
        return None
    epochs = len(after)
    return {"since": best_epoch + 1, "best_epoch": best_epoch, "epochs": epochs,
            "message": (f"The model has started to memorise the training data (overfitting): "
                        f"the validation loss has risen for {epochs} epoch"
                        f"{'s' if epochs != 1 else ''} since epoch {best_epoch} while the "
                        f"training loss kept falling. The best epoch's weights are the ones "
                        f"to keep; early stopping, more dropout or more data would help.")}
