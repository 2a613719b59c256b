"""The GPU paths measured, for ``bench/gpu_check.sh`` (issue 23): every figure a ratio to a
reference run in the same process on the same card.

1. ``loops``: ``Trainer.fit`` (AMP in bf16, or fp16 with a loss scaler, and the data kept on the
   device) against the loop tutorials teach - fp32, ``DataLoader(TensorDataset, shuffle=True)``,
   each batch moved to the GPU (target >= 3x) - and against a hand-written AMP loop over
   device-resident tensors (target >= 0.97x). An MLP on a 200,000 x 64 table.
2. ``backbone``: fine-tuning the shipped EfficientNet-Lite0 through ``Trainer`` (images/s).
3. ``ddp``: one process in an NCCL group (DistributedDataParallel), 30 steps, against the same
   steps without DDP: the same weights, and the steps/s of both.

``--device cpu --quick`` runs the same code on the CPU at tiny sizes (no target is judged
there): ``make test`` runs it that way, so the script cannot rot while no GPU is at hand.

Usage::

    python bench/bench_gpu.py [--out FIGURES.json] [--device cuda|cpu] [--quick] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

import torch  # noqa: E402
from bench_train import (  # noqa: E402
    _seconds_since,
    dataloader_loop,
    in_fresh_thread,
    plain_loop,
    synthetic,
)
from torch import nn  # noqa: E402

from ml.models import build_model, build_spec  # noqa: E402
from ml.runs.project import ModelConfig, TrainingConfig  # noqa: E402
from ml.system.device import amp_dtype  # noqa: E402
from ml.training import Trainer  # noqa: E402

TARGETS = {"vs_dataloader": 3.0, "vs_plain_amp": 0.97}


def mlp(d: int, k: int) -> nn.Module:
    """The app's MLP preset (what ``--model mlp --hidden 512,256`` builds)."""
    spec = build_spec(ModelConfig(preset="mlp", hidden=[512, 256], dropout=0.1), [d], k,
                      "classification")
    torch.manual_seed(0)
    return build_model(spec)


def plain_amp_loop(model, x, y, xv, yv, epochs: int, batch: int, lr: float,
                   device: torch.device) -> float:
    """The reference an engineer writes for a GPU: bench_train's plain loop (tensors on the
    device, randperm batches, a validation pass per epoch) with autocast and, for fp16, a
    GradScaler. Returns seconds."""
    return plain_loop(model, x, y, xv, yv, epochs, batch, lr, device, amp=True)


def trainer_fit(model, x, y, xv, yv, epochs, batch, lr, device) -> float:
    config = TrainingConfig(epochs=epochs, batch_size=batch, lr=lr, restore_best=False,
                            device=device.type, amp=True)
    return Trainer(model, "classification", config, device=device).fit(x, y, xv, yv).seconds


def bench_loops(device: torch.device, quick: bool, repeat: int) -> dict:
    n, d, k = (4_000, 16, 4) if quick else (200_000, 64, 10)
    x, y = synthetic(n, d, k)
    xv, yv = synthetic(n // 5, d, k, seed=1)
    batch, epochs = (256, 1) if quick else (1024, 3)
    methods = {"tutorial DataLoader loop (fp32)": dataloader_loop,
               "plain AMP loop": plain_amp_loop, "TrainDesk Trainer": trainer_fit}
    rates: dict[str, list[float]] = {m: [] for m in methods}
    for round_ in range(repeat + 1):  # round 0 warms up kernels, allocator and imports
        for name, run in methods.items():
            took = in_fresh_thread(lambda r=run: r(mlp(d, k), x, y, xv, yv, epochs, batch,
                                                   1e-3, device))
            if round_:
                rates[name].append(n * epochs / took)
    names = list(methods)
    ours = rates[names[2]]
    ratio = {"vs_dataloader": statistics.median(a / b for a, b in zip(ours, rates[names[0]],
                                                                      strict=True)),
             "vs_plain_amp": statistics.median(a / b for a, b in zip(ours, rates[names[1]],
                                                                     strict=True))}
    return {"case": f"MLP 512-256 on {n:,} x {d}, batch {batch}, {epochs} epochs",
            "samples_per_second": {m: statistics.median(v) for m, v in rates.items()},
            "ratios": ratio}


def bench_backbone(device: torch.device, quick: bool) -> dict:
    """Fine-tune EfficientNet-Lite0 (pretrained) on photo crops through the Trainer."""
    from bench_pretrained import backbone_net, write_photo_folders

    from ml.data.dataset import load_dataset, prepare
    from ml.models import backbones
    from ml.runs.project import DataConfig

    with tempfile.TemporaryDirectory() as tmp:
        per_class = (1, 1, 1) if quick else (48, 8, 8)
        source = str(write_photo_folders(Path(tmp), 0, per_class, overlap=True))
        prepared = prepare(load_dataset(source), DataConfig(source=source),
                           backbone=backbones.resolve(backbones.EFFICIENTNET))
    x, y, xv, yv = (prepared.x["train"], prepared.y["train"], prepared.x["val"],
                    prepared.y["val"])
    batch = 4 if quick else 64
    config = TrainingConfig(epochs=1 if quick else 3, batch_size=batch, lr=1e-4,
                            restore_best=False, device=device.type, amp=True)
    fit = in_fresh_thread(lambda: Trainer(backbone_net(prepared), "classification", config,
                                          device=device).fit(x, y, xv, yv))
    return {"case": f"EfficientNet-Lite0 fine-tuned, {len(x)} images of 224 x 224, batch {batch}",
            "images_per_second": fit.samples_per_second, "epochs": fit.epochs_completed}


def _steps(model, x, y, steps: int, device) -> float:
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    start = time.perf_counter()
    for i in range(steps):
        idx = slice((i * 256) % (len(x) - 256), (i * 256) % (len(x) - 256) + 256)
        loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return _seconds_since(start, device)


def bench_ddp(device: torch.device, quick: bool) -> dict:
    """One process in a process group (NCCL on a GPU, Gloo on the CPU) with DDP, against
    the same steps without it: equal weights, and what DDP costs."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    backend = "nccl" if device.type == "cuda" else "gloo"
    steps = 10 if quick else 30
    x, y = (torch.from_numpy(a).to(device) for a in synthetic(8_192, 64, 10))
    _steps(mlp(64, 10).to(device), x, y, 3, device)  # warm-up: kernels and allocator
    plain = mlp(64, 10).to(device)
    alone = _steps(plain, x, y, steps, device)
    dist.init_process_group(backend, store=dist.HashStore(), rank=0, world_size=1)
    try:
        wrapped = DistributedDataParallel(
            mlp(64, 10).to(device), device_ids=[device.index or 0] if backend == "nccl" else None)
        grouped = _steps(wrapped, x, y, steps, device)
        same = all(torch.allclose(a, b, atol=1e-5) for a, b in zip(
            plain.state_dict().values(), wrapped.module.state_dict().values(), strict=True))
    finally:
        dist.destroy_process_group()
    return {"backend": backend, "steps": steps, "same_weights": bool(same),
            "steps_per_second": {"without DDP": steps / alone, "DDP, 1 process": steps / grouped}}


def describe(device: torch.device) -> dict:
    out = {"torch": torch.__version__, "python": platform.python_version(),
           "device": str(device)}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        out.update(card=props.name, memory_gib=round(props.total_memory / 2**30, 1),
                   cuda=torch.version.cuda, amp=str(amp_dtype(device)).replace("torch.", ""))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="write the figures here as JSON")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a dry run)")
    parser.add_argument("--repeat", type=int, default=3, help="alternated rounds (default 3)")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("bench_gpu: no CUDA GPU is visible; run it where there is one (or --device cpu "
              "--quick for a dry run).", file=sys.stderr)
        return 3
    device = torch.device("cuda", 0) if args.device == "cuda" else torch.device("cpu")
    figures = {"machine": describe(device), "targets": TARGETS,
               "loops": bench_loops(device, args.quick, 1 if args.quick else args.repeat),
               "backbone": bench_backbone(device, args.quick), "ddp": bench_ddp(device, args.quick)}
    judged = device.type == "cuda" and not args.quick
    passed = {key: figures["loops"]["ratios"][key] >= target for key, target in TARGETS.items()}
    passed["ddp_same_weights"] = figures["ddp"]["same_weights"]
    figures["passed"] = passed if judged else {"ddp_same_weights": passed["ddp_same_weights"]}
    print(json.dumps(figures, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0 if all(figures["passed"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
