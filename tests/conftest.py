"""Shared fixtures: an isolated TrainDesk home per test, tiny datasets, CUDA skipping."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.watchdog import Watchdog  # noqa: E402

_WATCHDOG = Watchdog()


def pytest_configure(config):
    _WATCHDOG.configure()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    _WATCHDOG.enter(item.nodeid)
    try:
        return (yield)
    finally:
        _WATCHDOG.leave()


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "requires_cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def traindesk_home(tmp_path_factory, monkeypatch) -> Path:
    """Runs, exports and logs of every test go to a fresh folder, never to ~/TrainDesk."""
    home = tmp_path_factory.mktemp("traindesk_home")
    monkeypatch.setenv("TRAINDESK_HOME", str(home))
    return home


@pytest.fixture
def mixed_csv(tmp_path) -> Path:
    """A small CSV with numeric, categorical and boolean features, missing cells and a label."""
    rng = np.random.default_rng(0)
    n = 240
    size = rng.normal(10, 3, n)
    colour = rng.choice(["red", "green", "blue"], n)
    member = rng.choice(["yes", "no"], n)
    score = size + (colour == "red") * 4 + (member == "yes") * 2 + rng.normal(0, 0.5, n)
    label = np.where(score > np.median(score), "high", "low")
    df = pd.DataFrame({"id": np.arange(n), "size": size.round(3), "colour": colour,
                       "member": member, "label": label})
    df.loc[[3, 17, 40], "size"] = np.nan
    df.loc[[5, 9], "colour"] = np.nan
    path = tmp_path / "mixed.csv"
    df.to_csv(path, index=False)
    return path


@pytest.fixture
def regression_csv(tmp_path) -> Path:
    rng = np.random.default_rng(1)
    n = 300
    x1, x2 = rng.normal(0, 1, n), rng.uniform(0, 10, n)
    y = 3 * x1 + 0.5 * x2 ** 1.5 + 20 + rng.normal(0, 0.3, n)
    path = tmp_path / "reg.csv"
    pd.DataFrame({"x1": x1, "x2": x2, "price": y}).to_csv(path, index=False)
    return path


def run_main(*args: str, env: dict | None = None, timeout: int = 300):
    """Run ``python main.py ARGS`` in a subprocess; return the CompletedProcess."""
    import subprocess

    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True,
                          text=True, env=full_env, timeout=timeout, cwd=str(ROOT))


def run_cli(*args: str):
    """Run the headless command ARGS in this process (``ml.cli.main``, as ``main.py`` does) and
    return what :func:`run_main` returns. For the many bad-input cases, whose one-line answers
    need no fresh interpreter (each saves the seconds of importing torch again); every kind of
    case still has one run through :func:`run_main`, as a user runs it."""
    import contextlib
    import io
    import subprocess

    from ml.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse's own errors
            code = exc.code if isinstance(exc.code, int) else 2
    return subprocess.CompletedProcess(["main.py", *args], code, out.getvalue(), err.getvalue())


@pytest.fixture(autouse=True)
def _no_threads_left_behind(request):
    """Every worker thread a test started has ended by the end of the test.

    Qt tests also collect garbage on the GUI thread only, as the app does (workers/gc_guard.py).
    """
    if "qtbot" in request.fixturenames:
        from workers import gc_guard

        gc_guard.install(request.getfixturevalue("qapp"))
    yield
    if "qtbot" not in request.fixturenames:
        return
    from PySide6.QtTest import QTest

    from workers import gc_guard
    from workers.base import thread_reaper

    reaper = thread_reaper()
    try:
        assert reaper.wait_all(60_000), "a worker thread did not end"
        QTest.qWait(10)  # let queued thread-finished slots run
    finally:
        gc_guard.uninstall()
