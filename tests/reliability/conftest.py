"""The GUI fixtures (``window``, ``user``) for the reliability tests that drive the window."""

from tests.gui.conftest import user, window  # noqa: F401 - fixtures
