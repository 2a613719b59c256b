"""The five steps of the wizard, and what each is for (the tour and the welcome use these words).

Kept apart from :mod:`gui.state` so that the window can show its step list before PyTorch and
pandas are imported.
"""

from __future__ import annotations

STEPS = ("Data", "Model", "Train", "Evaluate", "Export")

#: One or two plain sentences per step, for the 30-second tour.
TOUR = (
    "Start with your data: a CSV or Excel table, a folder of images sorted into one folder per "
    "class, a column of text - or one of the samples that ship with TrainDesk. TrainDesk checks "
    "it and suggests what to predict.",
    "Pick a model. A preset that suits your data is already chosen; you can change its size, "
    "or add and remove layers, and see the network drawn as you go.",
    "Press Start (Ctrl+Return). The curves show how well the model learns, epoch by epoch. "
    "Pause (Ctrl+P) or stop (Ctrl+.) at any moment; the best version is kept.",
    "See how good the model is on data it never saw: accuracy, the confusion matrix, the "
    "mistakes it made - and try it yourself on an image, a drawing or a row you type.",
    "Save the model to use it elsewhere (ONNX, PyTorch, a ready-to-run folder), make it "
    "smaller, or write a report to hand over.",
)
