"""TrainDesk's desktop GUI: views over the ``ml`` library, driven by workers."""
