"""Training speed: TrainDesk against the plain PyTorch loop an engineer would write.

Each case trains the same network on the same data with the same batch size and epochs, three
ways, measured in this run on this machine:

* ``plain``   - a hand-written loop: randperm, index, forward, loss, backward, step, and a
                validation pass per epoch (what a careful engineer writes);
* ``trainer`` - ``ml.training.Trainer.fit`` (callbacks, metrics on the device, best weights);
* ``app``     - the GUI's path: ``TrainingWorker`` on a QThread with its throttled signals,
                run under an offscreen Qt event loop, including writing the run folder.

It prints samples per second and the ratio to ``plain`` (1.00 = as fast as the hand-written
loop). Usage::

    .venv/bin/python bench/bench_training.py [--quick] [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from ml.models import build_model, build_spec  # noqa: E402
from ml.project import DataConfig, ModelConfig, Project, TrainingConfig  # noqa: E402
from ml.training import Trainer, select_device  # noqa: E402


def synthetic(n: int, d: int, k: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(d, k))
    x = rng.normal(size=(n, d)).astype(np.float32)
    y = (x @ w + rng.normal(scale=2.0, size=(n, k))).argmax(1).astype(np.int64)
    return x, y


def plain_loop(model: nn.Module, x, y, xv, yv, epochs: int, batch: int, lr: float,
               device: torch.device) -> float:
    """The reference: what an engineer writes by hand. Returns seconds."""
    torch.manual_seed(0)
    model.to(device)
    xt, yt = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
    xvt, yvt = torch.from_numpy(xv).to(device), torch.from_numpy(yv).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=1e-4)
    n = len(xt)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(n, device=device)
        for i in range(0, n, batch):
            idx = perm[i:i + batch]
            out = model(xt[idx])
            loss = nn.functional.cross_entropy(out, yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            val = nn.functional.cross_entropy(model(xvt), yvt).item()
    assert np.isfinite(val)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def trainer_fit(model, x, y, xv, yv, epochs, batch, lr, device) -> float:
    config = TrainingConfig(epochs=epochs, batch_size=batch, lr=lr, restore_best=False,
                            device=device.type)
    result = Trainer(model, "classification", config, device=device).fit(x, y, xv, yv)
    return result.seconds


def app_worker(source: str, model_cfg: ModelConfig, epochs: int, batch: int, lr: float,
               device: torch.device) -> float:
    """The full GUI path: TrainingWorker on a QThread under a Qt event loop."""
    from PySide6.QtCore import QCoreApplication, QEventLoop

    from ml.data import load_dataset
    from workers.base import TaskRunner
    from workers.training_worker import TrainingWorker

    app = QCoreApplication.instance() or QCoreApplication([])
    project = Project(data=DataConfig(source=source), model=model_cfg,
                      training=TrainingConfig(epochs=epochs, batch_size=batch, lr=lr,
                                              restore_best=False, device=device.type))
    dataset = load_dataset(source)
    with tempfile.TemporaryDirectory() as tmp:
        runner = TaskRunner()
        loop = QEventLoop()
        results = []
        runner.finished.connect(lambda r: (results.append(r), loop.quit()))
        runner.errored.connect(lambda m: (results.append(m), loop.quit()))
        worker = TrainingWorker(project, dataset, Path(tmp))
        counts = {"batches": 0}
        worker.batches_logged.connect(lambda a: counts.__setitem__("batches",
                                                                   counts["batches"] + 1))
        runner.start(worker)
        loop.exec()
        runner.shutdown()
        app.processEvents()
    result = results[0]
    if isinstance(result, str):
        raise RuntimeError(result)
    return result.fit.seconds


CASES = {
    "mlp64": "MLP 64-256-128-10, synthetic rows, batch 64",
    "mlp512": "MLP 64-256-128-10, synthetic rows, batch 512",
    "cnn": "Small CNN, digits sample 8x8, batch 64",
}


def in_fresh_thread(fn):
    """Run *fn* on a new thread and return its result.

    Every measured run gets a thread of its own (the app path runs on a QThread anyway): a
    thread that ran torch keeps its own OpenMP team, so the main thread must never compute,
    or it would slow the threads measured after it.
    """
    out = []
    thread = threading.Thread(target=lambda: out.append(fn()))
    thread.start()
    thread.join()
    return out[0]


def make_case(case: str, quick: bool):
    from ml.data import load_dataset, prepare

    if case.startswith("mlp"):
        n = 20_000 if quick else 60_000
        x, y = synthetic(n, 64, 10)
        xv, yv = synthetic(n // 5, 64, 10, seed=1)
        model_cfg = ModelConfig(preset="mlp", hidden=[256, 128], dropout=0.1)
        return x, y, xv, yv, model_cfg, [64], int(case[3:]), 2 if quick else 3, None
    prepared = prepare(load_dataset("sample:digits"), DataConfig(source="sample:digits"))
    model_cfg = ModelConfig(preset="cnn", conv_channels=[32, 64], hidden=[128], dropout=0.25)
    return (prepared.x["train"], prepared.y["train"], prepared.x["val"], prepared.y["val"],
            model_cfg, [1, 8, 8], 64, 5 if quick else 15, "sample:digits")


def bench_case(case: str, repeat: int, quick: bool, device: torch.device) -> dict:
    x, y, xv, yv, model_cfg, shape, batch, epochs, source = make_case(case, quick)
    spec = build_spec(model_cfg, shape, 10, "classification")

    def fresh():
        torch.manual_seed(0)
        return build_model(spec)

    methods = {
        "plain": lambda e: in_fresh_thread(
            lambda: plain_loop(fresh(), x, y, xv, yv, e, batch, 1e-3, device)),
        "trainer": lambda e: in_fresh_thread(
            lambda: trainer_fit(fresh(), x, y, xv, yv, e, batch, 1e-3, device)),
    }
    if source:
        methods["app"] = lambda e: app_worker(source, model_cfg, e, batch, 1e-3, device)
    for run in methods.values():
        run(1)  # warm-up: allocator, kernels, lazy imports
    rates = {m: [] for m in methods}
    for _ in range(repeat):  # round-robin, so drift of a shared machine hits all alike
        for name, run in methods.items():
            rates[name].append(len(x) * epochs / run(epochs))
    ratios = {m: statistics.median(a / b for a, b in zip(rates[m], rates["plain"], strict=True))
              for m in methods if m != "plain"}
    return {"rates": {m: statistics.median(v) for m, v in rates.items()}, "ratios": ratios,
            "runs": rates}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller cases, one round")
    parser.add_argument("--repeat", type=int, default=7, help="rounds (default 7)")
    args = parser.parse_args()
    repeat = 1 if args.quick else args.repeat
    device = select_device("auto")
    print(f"device: {device} | torch {torch.__version__} | threads {torch.get_num_threads()}")
    rows = []
    for case, title in CASES.items():
        result = bench_case(case, repeat, args.quick, device)
        rows.append((title, result))
        runs = "; ".join(f"{m} " + ", ".join(f"{r:,.0f}" for r in v)
                         for m, v in result["runs"].items())
        print(f"  {case}: {runs}", flush=True)
    print()
    print(f"{'case':<46} {'plain':>9} {'trainer':>9} {'ratio':>6} {'app':>9} {'ratio':>6}")
    for title, r in rows:
        rates, ratios = r["rates"], r["ratios"]
        app = (f"{rates['app']:>9,.0f} {ratios['app']:>6.2f}" if "app" in rates
               else f"{'-':>9} {'-':>6}")
        print(f"{title:<46} {rates['plain']:>9,.0f} {rates['trainer']:>9,.0f} "
              f"{ratios['trainer']:>6.2f} {app}")
    print(f"\nsamples/second (median of {repeat} rounds); ratio = median over rounds of "
          f"method / plain loop in the same round (1.00 = as fast as the hand-written loop)")


if __name__ == "__main__":
    main()
