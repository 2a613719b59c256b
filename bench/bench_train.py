"""Training speed and memory: TrainDesk against what an engineer would write by hand.

Every figure is a ratio to a reference measured in the same run on the same machine:

1. ``trainer``: ``ml.training.Trainer.fit`` against a hand-written loop (randperm, index,
   forward, loss, backward, step, a validation pass per epoch) - an MLP on a 100,000 x 50
   table and the small CNN on the digits sample (target >= 0.97).
2. ``dataloader``: the trainer against the loop tutorials teach - ``DataLoader(TensorDataset,
   shuffle=True)`` - on the same in-memory table (target >= 1.5x faster).
3. ``gui``: the Train page training a run with live curves against the same run headless
   (``TrainingJob`` as ``main.py train`` runs it), with a 10 ms QTimer probing the event loop
   (targets: >= 0.95 of headless; longest stall < 100 ms, p99 < 30 ms).
4. ``memory``: resident memory after 50 consecutive short runs in one process, against after
   the first (target: < 50 MB growth).

Usage::

    .venv/bin/python bench/bench_train.py [--quick] [--repeat N] \
        [--only speed,dataloader,gui,memory]
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
import threading
import time
from contextlib import nullcontext
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from ml.models import build_model, build_spec  # noqa: E402
from ml.runs.project import DataConfig, ModelConfig, Project, TrainingConfig  # noqa: E402
from ml.system.device import amp_dtype, select_device  # noqa: E402
from ml.training import Trainer  # noqa: E402


def synthetic(n: int, d: int, k: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(d, k))
    x = rng.normal(size=(n, d)).astype(np.float32)
    y = (x @ w + rng.normal(scale=2.0, size=(n, k))).argmax(1).astype(np.int64)
    return x, y


def _validate(model, xv, yv) -> None:
    """The validation pass both reference loops make after every epoch."""
    model.eval()
    with torch.no_grad():
        assert np.isfinite(nn.functional.cross_entropy(model(xv), yv).item())


def _seconds_since(start: float, device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def plain_loop(model: nn.Module, x, y, xv, yv, epochs: int, batch: int, lr: float,
               device: torch.device, amp: bool = False) -> float:
    """The reference: what an engineer writes by hand. With *amp* (on a GPU), autocast in the
    device's mixed precision and a GradScaler for fp16. Returns seconds."""
    torch.manual_seed(0)
    model.to(device)
    xt, yt = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
    xvt, yvt = torch.from_numpy(xv).to(device), torch.from_numpy(yv).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=1e-4)
    dtype = amp_dtype(device) if amp else None
    autocast = (lambda: torch.autocast(device.type, dtype=dtype)) if dtype else nullcontext
    scaler = torch.amp.GradScaler(device.type) if dtype == torch.float16 else None
    n = len(xt)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(n, device=device)
        for i in range(0, n, batch):
            idx = perm[i:i + batch]
            with autocast():
                loss = nn.functional.cross_entropy(model(xt[idx]), yt[idx])
            opt.zero_grad(set_to_none=True)
            if scaler is None:
                loss.backward()
                opt.step()
            else:
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
        _validate(model, xvt, yvt)
    return _seconds_since(start, device)


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


def dataloader_loop(model, x, y, xv, yv, epochs, batch, lr, device) -> float:
    """The tutorial loop: DataLoader over a TensorDataset, shuffled, moved to the device."""
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(0)
    model.to(device)
    loader = DataLoader(TensorDataset(torch.from_numpy(x), torch.from_numpy(y)),
                        batch_size=batch, shuffle=True)
    xvt, yvt = torch.from_numpy(xv).to(device), torch.from_numpy(yv).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=1e-4)
    start = time.perf_counter()
    for _ in range(epochs):
        model.train()
        for xb, yb in loader:
            xb, yb = xb.to(device), yb.to(device)
            loss = nn.functional.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        _validate(model, xvt, yvt)
    return _seconds_since(start, device)


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

    if case == "mlp":
        n = 30_000 if quick else 100_000
        x, y = synthetic(n, 50, 10)
        xv, yv = synthetic(n // 5, 50, 10, seed=1)
        model_cfg = ModelConfig(preset="mlp", hidden=[256, 128], dropout=0.1)
        return x, y, xv, yv, model_cfg, [50], 128, 2 if quick else 3
    prepared = prepare(load_dataset("sample:digits"), DataConfig(source="sample:digits"))
    model_cfg = ModelConfig(preset="cnn", conv_channels=[32, 64], hidden=[128], dropout=0.25)
    return (prepared.x["train"], prepared.y["train"], prepared.x["val"], prepared.y["val"],
            model_cfg, [1, 8, 8], 64, 5 if quick else 15)


def compare(methods: dict, repeat: int, samples: int) -> dict:
    """Round-robin *repeat* rounds (drift of a shared machine hits all alike); samples/s and
    the median over rounds of each method's ratio to the first."""
    for run in methods.values():
        run(1)  # warm-up: allocator, kernels, lazy imports
    rates = {m: [] for m in methods}
    for _ in range(repeat):
        for name, run in methods.items():
            rates[name].append(samples / run())
    ref = next(iter(methods))
    ratios = {m: statistics.median(a / b for a, b in zip(rates[m], rates[ref], strict=True))
              for m in methods if m != ref}
    return {"rates": {m: statistics.median(v) for m, v in rates.items()}, "ratios": ratios}


def bench_speed(case: str, repeat: int, quick: bool, device, with_dataloader: bool,
                batch: int | None = None, hidden: list[int] | None = None) -> dict:
    x, y, xv, yv, model_cfg, shape, default_batch, epochs = make_case(case, quick)
    batch = batch or default_batch
    if hidden:
        model_cfg.hidden = list(hidden)
    spec = build_spec(model_cfg, shape, 10, "classification")

    def fresh():
        torch.manual_seed(0)
        return build_model(spec)

    def method(fn):
        return lambda e=epochs: in_fresh_thread(
            lambda: fn(fresh(), x, y, xv, yv, e, batch, 1e-3, device))

    if with_dataloader:  # the reference is the tutorial loop
        methods = {"dataloader": method(dataloader_loop), "trainer": method(trainer_fit)}
    else:
        methods = {"plain": method(plain_loop), "trainer": method(trainer_fit)}
    return compare(methods, repeat, len(x) * epochs)


def _table_csv(path: Path, n: int) -> None:
    import pandas as pd

    x, y = synthetic(n, 50, 10, seed=3)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(50)])
    frame["label"] = [f"c{v}" for v in y]
    frame.to_csv(path, index=False)


def bench_gui(repeat: int, quick: bool, device) -> dict:
    """The Train page with live curves against the same job headless; event-loop stalls."""
    from PySide6.QtWidgets import QApplication

    from gui.app import configure_pyqtgraph
    from gui.pages.train_page import TrainPage
    from gui.state import ProjectState
    from ml.data import load_dataset
    from ml.jobs.training import TrainingJob

    app = QApplication.instance() or QApplication([])  # noqa: F841 - kept alive
    configure_pyqtgraph()
    tmp = Path(tempfile.mkdtemp(prefix="bench-gui-"))
    csv = tmp / "table.csv"
    _table_csv(csv, 20_000 if quick else 100_000)
    dataset = load_dataset(str(csv))
    project = Project(data=DataConfig(source=str(csv), target="label"),
                      model=ModelConfig(preset="mlp", hidden=[256, 128], dropout=0.1),
                      training=TrainingConfig(epochs=2 if quick else 4, batch_size=128,
                                              device=device.type))
    project.path = tmp / "p.tdproj"
    state = ProjectState(project)
    state.set_dataset(dataset, keep_settings=True)
    page = TrainPage(state)
    page.resize(1400, 800)
    page.show()
    gaps: list[float] = []

    def headless(_=None):
        job = TrainingJob(project, dataset=dataset, runs_dir=tmp / "headless")
        return in_fresh_thread(lambda: job.run().fit.samples_per_second)

    def gui(probe_ms: int = 0):
        """One run from the Train page under the app's own event loop; with *probe_ms* a
        timer of that period records how late each of its beats came."""
        from PySide6.QtCore import QEventLoop

        from gui.stall_probe import StallProbe

        results = []
        loop = QEventLoop()
        done = lambda result: (results.append(result), loop.quit())  # noqa: E731
        page.run_finished.connect(done)
        probe = StallProbe(probe_ms or 10)
        if probe_ms:
            probe.start()
        page.start_training()
        loop.exec()
        probe.stop()
        gaps.extend(gap / 1000 for gap in probe.gaps_ms)  # seconds, as below
        page.run_finished.disconnect(done)
        return results[-1].fit.samples_per_second

    headless()
    gui()
    rates = {"headless": [], "gui": []}
    for _ in range(repeat):
        rates["headless"].append(headless())
        rates["gui"].append(gui())
    ratio = statistics.median(g / h for g, h in zip(rates["gui"], rates["headless"]))
    # The probe wakes the GUI thread 100 times a second - a load of its own - so stalls are
    # measured in separate runs from the speed.
    for _ in range(max(2, repeat // 2)):
        gui(probe_ms=10)
    gaps_ms = np.array(gaps) * 1000
    page.close()
    return {"rates": {k: statistics.median(v) for k, v in rates.items()}, "ratio": ratio,
            "stall_max": float(gaps_ms.max()), "stall_p99": float(np.percentile(gaps_ms, 99)),
            "probes": len(gaps_ms)}


def bench_memory(runs: int) -> dict:
    """RSS after *runs* consecutive short runs in this process, against after the first."""
    import psutil

    from ml.data import load_dataset
    from ml.jobs.training import TrainingJob

    proc = psutil.Process()
    dataset = load_dataset("sample:digits")
    project = Project(data=DataConfig(source="sample:digits"),
                      model=ModelConfig(preset="cnn", conv_channels=[16, 32], hidden=[64]),
                      training=TrainingConfig(epochs=2, batch_size=64))
    readings = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(runs):
            in_fresh_thread(lambda: TrainingJob(project, dataset=dataset,
                                                run_dir=Path(tmp) / f"r{i}").run())  # noqa: B023
            gc.collect()
            readings.append(proc.memory_info().rss)
    growth = (readings[-1] - readings[0]) / 2**20
    return {"first_mb": readings[0] / 2**20, "last_mb": readings[-1] / 2**20,
            "growth_mb": growth, "runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller cases, one round")
    parser.add_argument("--repeat", type=int, default=5, help="rounds (default 5)")
    parser.add_argument("--only", default="speed,dataloader,gui,memory")
    args = parser.parse_args()
    parts = set(args.only.split(","))
    repeat = 1 if args.quick else args.repeat
    device = select_device("auto")
    print(f"device: {device} | torch {torch.__version__} | threads {torch.get_num_threads()}",
          flush=True)
    if "speed" in parts:
        print(f"\n{'trainer vs hand-written loop':<44} {'plain':>9} {'trainer':>9} {'ratio':>6}"
              f"  (target >= 0.97)")
        for case, title in (("mlp", "MLP 50-256-128-10, 100,000 rows, batch 128"),
                            ("cnn", "Small CNN, digits 8x8, batch 64")):
            r = bench_speed(case, repeat, args.quick, device, False)
            rates, ratios = r["rates"], r["ratios"]
            print(f"{title:<44} {rates['plain']:>9,.0f} {rates['trainer']:>9,.0f} "
                  f"{ratios['trainer']:>6.2f}", flush=True)
    if "dataloader" in parts:
        print(f"\n{'trainer vs DataLoader(TensorDataset) loop':<44} {'loader':>9} "
              f"{'trainer':>9} {'x':>6}  (target >= 1.5)")
        # 64: the PyTorch quickstart tutorial's batch size; 64-32: TrainDesk's MLP for small
        # tables. The loader's cost is per sample, so it weighs most on small models.
        for hidden, batch in (([64, 32], 64), ([64, 32], 128), ([256, 128], 64),
                              ([256, 128], 128)):
            r = bench_speed("mlp", repeat, args.quick, device, True, batch=batch, hidden=hidden)
            rates = r["rates"]
            title = f"MLP 50-{'-'.join(map(str, hidden))}-10, 100,000 rows, batch {batch}"
            print(f"{title:<44} {rates['dataloader']:>9,.0f} {rates['trainer']:>9,.0f} "
                  f"{r['ratios']['trainer']:>6.2f}", flush=True)
    if "gui" in parts:
        r = bench_gui(repeat, args.quick, device)
        print(f"\nGUI with live curves vs headless (MLP, 100,000-row CSV): headless "
              f"{r['rates']['headless']:,.0f}/s, GUI {r['rates']['gui']:,.0f}/s, ratio "
              f"{r['ratio']:.2f} (target >= 0.95)")
        print(f"event-loop probe (10 ms timer, {r['probes']} beats): longest gap "
              f"{r['stall_max']:.0f} ms (target < 100), p99 {r['stall_p99']:.0f} ms "
              f"(target < 30)", flush=True)
    if "memory" in parts:
        r = bench_memory(10 if args.quick else 50)
        print(f"\nmemory: {r['runs']} consecutive runs: RSS {r['first_mb']:.0f} MB after the "
              f"first, {r['last_mb']:.0f} MB after the last: growth {r['growth_mb']:+.1f} MB "
              f"(target < 50)")
    print("\nsamples/second are medians over rounds; ratios are medians over rounds of the "
          "per-round ratio (1.00 = as fast as the reference)")


if __name__ == "__main__":
    main()
