"""TrainDesk's machine-learning library: data, models, training, evaluation, export, projects.

This package never imports Qt (a test enforces it); the GUI in ``gui/`` and the workers in
``workers/`` are built on top of it. Importing ``ml`` is cheap: heavy dependencies (torch,
pandas) load with the submodules that need them.
"""

__version__ = "0.3.0"
