"""Pretrained backbones: quality and speed against references measured in the same run.

1. ``images``: few-shot photos (5 training images per class, 12 classes) - EfficientNet-Lite0 as
   a linear probe and fine-tuned, against the default CNN preset trained from scratch (targets:
   pretrained >= 0.90 test accuracy and >= scratch + 0.15). The photos are the few real ones
   that ship offline with installed software (see :data:`PHOTOS`); every image is a crop of one
   of them, and training and test crops come from different, non-overlapping cells of a grid.
2. ``text``: MiniLM as a linear probe and fine-tuned, against TF-IDF + logistic regression
   (scikit-learn) on the same split (target: fine-tuned >= TF-IDF). The texts are the first
   paragraphs of docstrings of installed packages, labelled by what the package is about, with
   package names and dotted paths taken out (see :func:`docstring_texts`).
3. ``speed``: fine-tuning samples/s of ``Trainer`` over the EfficientNet network against a plain
   hand-written PyTorch loop over the same module, same batches (target >= 0.95); a linear probe
   run from start to finished the first time (features computed) against the second time
   (features read from the cache; target >= 10x faster).

Every run uses its own empty ``TRAINDESK_HOME`` (so the feature cache starts empty) and the
app's headless path (``TrainingJob``, as ``main.py train`` runs it).

Usage::

    .venv/bin/python bench/bench_pretrained.py [--only images,text,speed,cache] [--seeds N] \
        [--repeat N] [--text-lr RATE --text-epochs N (diagnosis only)]
"""

from __future__ import annotations

import argparse
import inspect
import os
import re
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

#: Real photos available offline, one class each. The two scikit-learn sample images ship with
#: scikit-learn; ``skimage:`` ones are the sample photos inside scikit-image's wheel (a
#: development requirement, read as files: never imported); the other two are documentation
#: images of the Rust embedded book (a circuit board) and of Jetty (clouds, sea and a pier).
PHOTOS = {
    "temple": "sklearn:china.jpg",
    "flower": "sklearn:flower.jpg",
    "circuit_board": "~/.rustup/toolchains/*/share/doc/rust/html/embedded-book/assets/f3.jpg",
    "sky_and_pier": "/usr/lib/google-cloud-sdk/platform/google_appengine/google/appengine/"
                    "tools/java/jetty12/jetty-home/modules/demo.d/root/images/jetty-pic.png",
    "astronaut": "skimage:astronaut.png",
    "cat": "skimage:chelsea.png",
    "coffee": "skimage:coffee.png",
    "rocket": "skimage:rocket.jpg",
    "motorcycle": "skimage:motorcycle_left.png",
    "galaxies": "skimage:hubble_deep_field.jpg",
    "retina": "skimage:retina.jpg",
    "coins": "skimage:coins.png",
}
#: Crops per class: training, validation (picks the best epoch) and held-out test.
SHOTS, VAL_SHOTS, TEST_SHOTS = 5, 2, 11
CROP_SIDE = 128
PRETRAINED_TARGET, MARGIN_TARGET = 0.90, 0.15
#: Docstrings of these modules, labelled by what they are about.
TEXT_SOURCES = {
    "arrays": ["numpy", "numpy.linalg", "numpy.fft", "numpy.random"],
    "tables": ["pandas", "pandas.api.types"],
    "neural networks": ["torch", "torch.nn", "torch.nn.functional", "torch.optim"],
    "statistics": ["scipy.stats", "scipy.optimize", "scipy.signal", "scipy.interpolate"],
    "web and email": ["email", "email.message", "email.utils", "http.client", "http.server",
                      "urllib.request", "urllib.parse", "smtplib", "html.parser",
                      "http.cookiejar", "mailbox", "imaplib", "ftplib", "xmlrpc.client"],
}
TEXTS_PER_CLASS = 120
TEXT_EPOCHS, TEXT_BATCH = 3, 16
#: Words that would name the label outright.
_NAMES = re.compile(r"\b(numpy|np|pandas|pd|torch|nn|scipy|sklearn|email|http|urllib|smtplib|"
                    r"python)\b", re.I)


# -- data --------------------------------------------------------------------------------------
def _photo(source: str):
    from PIL import Image

    if source.startswith("sklearn:"):
        from sklearn.datasets import load_sample_image

        return Image.fromarray(load_sample_image(source.split(":", 1)[1]))
    if source.startswith("skimage:"):
        import importlib.util

        spec = importlib.util.find_spec("skimage")  # finds the package without importing it
        if spec is None or not spec.submodule_search_locations:
            raise SystemExit("scikit-image is not installed: pip install -r "
                             "requirements-dev.txt")
        folder = Path(spec.submodule_search_locations[0]) / "data"
        return Image.open(folder / source.split(":", 1)[1]).convert("RGB")
    matches = sorted(Path("/").glob(str(Path(source).expanduser()).lstrip("/")))
    if not matches:
        raise SystemExit(f"Photo not found on this machine: {source}")
    return Image.open(matches[0]).convert("RGB")


def _grid(width: int, height: int, cells: int) -> tuple[int, int]:
    """Columns and rows of at least *cells* cells with the largest square that fits in one."""
    best = (0.0, 1, cells)
    for cols in range(1, cells + 1):
        rows = -(-cells // cols)
        side = min(width / cols, height / rows)
        if side > best[0]:
            best = (side, cols, rows)
    return best[1], best[2]


def crop_boxes(width: int, height: int, n: int, rng: np.random.Generator,
               overlap: bool = False) -> list[tuple[int, int, int, int]]:
    """*n* square crop boxes ``(left, top, right, bottom)``, one per cell of a grid over the
    photo (in random cell order, 60-100% of a cell's side): no two boxes share a pixel.
    *overlap*: anywhere in the photo, half its shorter side at most (for speed runs only)."""
    cols, rows = _grid(width, height, n) if not overlap else (1, 1)
    cw, ch = width / cols, height / rows
    cells = [(i % cols, i // cols) for i in range(cols * rows)]
    order = rng.permutation(len(cells)) if not overlap else np.zeros(n, int)
    boxes = []
    for i in range(n):
        c, r = cells[order[i]]
        side = rng.uniform(0.6, 1.0) * min(cw, ch) * (0.5 if overlap else 1.0)
        x0, y0 = c * cw + rng.uniform(0, cw - side), r * ch + rng.uniform(0, ch - side)
        # Right and bottom are exclusive (PIL's crop), so truncating keeps a box in its cell.
        boxes.append((int(x0), int(y0), int(x0 + side), int(y0 + side)))
    return boxes


def write_photo_folders(root: Path, seed: int, per_class: tuple[int, int, int] = (
        SHOTS, VAL_SHOTS, TEST_SHOTS), overlap: bool = False) -> Path:
    """``root/{train,val,test}/<class>/*.jpg``: the crops of :func:`crop_boxes`, rescaled to
    128 px - no test crop shares a pixel with a training crop (unless *overlap*)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    n_train, n_val, _ = per_class
    for name, source in PHOTOS.items():
        img = _photo(source)
        for i, box in enumerate(crop_boxes(*img.size, sum(per_class), rng, overlap)):
            part = "train" if i < n_train else "val" if i < n_train + n_val else "test"
            folder = root / part / name
            folder.mkdir(parents=True, exist_ok=True)
            img.crop(box).resize((CROP_SIDE, CROP_SIDE), Image.BICUBIC).save(
                folder / f"{i:02d}.jpg", quality=92)
    return root


def _summary(doc: str) -> str:
    """A docstring's first paragraph, without code, dotted paths or package names."""
    text = " ".join(re.split(r"\n\s*\n", inspect.cleandoc(doc))[0].split())
    text = re.sub(r"`[^`]*`|\w+(?:\.\w+)+", " ", text)
    return " ".join(_NAMES.sub(" ", text).split())


def _docstrings(module_name: str):
    import importlib
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = importlib.import_module(module_name)
        for name in sorted(dir(module)):
            obj = getattr(module, name, None) if not name.startswith("_") else None
            if obj is None or inspect.ismodule(obj):
                continue
            yield getattr(obj, "__doc__", None)
            if inspect.isclass(obj):
                for attr in sorted(vars(obj)):
                    if not attr.startswith("_"):
                        yield getattr(getattr(obj, attr, None), "__doc__", None)


def docstring_texts(path: Path, seed: int = 0) -> Path:
    """A labelled text CSV (columns ``text``, ``topic``): *TEXTS_PER_CLASS* distinct docstring
    summaries of at least 6 words per topic, drawn at random."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    seen: set[str] = set()
    rows = []
    for topic, modules in TEXT_SOURCES.items():
        texts = []
        for module in modules:
            for doc in _docstrings(module):
                text = _summary(doc) if isinstance(doc, str) else ""
                if len(text.split()) >= 6 and text not in seen:
                    seen.add(text)
                    texts.append(text)
        for i in rng.permutation(len(texts))[:TEXTS_PER_CLASS]:
            rows.append((texts[i], topic))
    pd.DataFrame(rows, columns=["text", "topic"]).to_csv(path, index=False)
    return path


# -- the app's path ------------------------------------------------------------------------------
def project_for(source: str, backbone: str = "", mode: str = "", seed: int = 0):
    """The project ``main.py train --data SOURCE [--backbone B --mode M]`` trains."""
    from ml.data.dataset import load_dataset, resolve
    from ml.jobs.training import apply_suggestions
    from ml.runs.project import Project

    project = Project(name="bench")
    project.data.source = source
    project.data.split.seed = seed
    dataset = load_dataset(source)
    project.data.target = dataset.default_target
    apply_suggestions(project, dataset, resolve(dataset, project.data))
    project.training.seed = seed
    if backbone:
        from ml.jobs.estimate import schedule_for_start

        project.model.backbone, project.model.train_mode = backbone, mode
        for name, value in schedule_for_start(project, None, dataset.n_rows).items():
            setattr(project.training, name, value)
    return project, dataset


def train(project, dataset, runs: Path):
    """Train headless; return the result and the seconds from start to finished."""
    from ml.jobs.training import TrainingJob

    start = time.perf_counter()
    result = TrainingJob(project, dataset=dataset, runs_dir=runs,
                         on_message=lambda message: None).run()
    return result, time.perf_counter() - start


def in_fresh_thread(fn):
    """Run *fn* on a thread of its own (as the app does; see ``bench/bench_train.py``)."""
    out: list = []
    thread = threading.Thread(target=lambda: out.append(fn()))
    thread.start()
    thread.join()
    return out[0]


# -- 1. few-shot images --------------------------------------------------------------------------
def bench_images(tmp: Path, seeds: int) -> bool:
    """Scratch CNN, EfficientNet probe and fine-tune on the same crops, per seed."""
    scores: dict[str, list[float]] = {"scratch": [], "probe": [], "finetune": []}
    seconds: dict[str, list[float]] = {k: [] for k in scores}
    for seed in range(seeds):
        source = str(write_photo_folders(tmp / f"photos{seed}", seed))
        for method in scores:
            backbone = "" if method == "scratch" else "efficientnet_lite0"
            project, dataset = project_for(source, backbone, method, seed)
            result, took = in_fresh_thread(lambda p=project, d=dataset: train(p, d, tmp / "runs"))
            scores[method].append(float(result.metrics["test"]["accuracy"]))
            seconds[method].append(took)
            settings = project.training
            print(f"  seed {seed} {method:8s} accuracy {scores[method][-1]:.3f} "
                  f"({took:.0f} s; {settings.epochs} epochs, batch {settings.batch_size}, "
                  f"{len(result.prepared.y['train'])} training / "
                  f"{len(result.prepared.y['test'])} test images)", flush=True)
    mean = {k: float(np.mean(v)) for k, v in scores.items()}
    print(f"images ({len(PHOTOS)} classes, {SHOTS} training images per class, mean of {seeds} "
          f"crop sets):")
    for method, value in mean.items():
        print(f"  {method:8s} test accuracy {value:.3f}  ({np.mean(seconds[method]):.0f} s a run)")
    ok = True
    for method in ("probe", "finetune"):
        good = mean[method] >= PRETRAINED_TARGET
        ahead = mean[method] - mean["scratch"] >= MARGIN_TARGET
        ok &= good and ahead
        print(f"  target {method} >= {PRETRAINED_TARGET}: {'PASS' if good else 'FAIL'}; "
              f">= scratch + {MARGIN_TARGET}: {'PASS' if ahead else 'FAIL'} "
              f"({mean[method] - mean['scratch']:+.3f})")
    return ok


# -- 2. text -------------------------------------------------------------------------------------
def tfidf_accuracy(source: str, prepared) -> float:
    """TF-IDF (words and word pairs) + logistic regression on the app's own split."""
    import pandas as pd
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    frame = pd.read_csv(source)
    train_rows, test_rows = frame.iloc[prepared.rows["train"]], frame.iloc[prepared.rows["test"]]
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    model = LogisticRegression(max_iter=3000, C=10.0)
    model.fit(vectorizer.fit_transform(train_rows["text"]), train_rows["topic"])
    predicted = model.predict(vectorizer.transform(test_rows["text"]))
    return float((predicted == test_rows["topic"].to_numpy()).mean())


def bench_text(tmp: Path, seeds: int, lr: float | None = None, epochs: int = TEXT_EPOCHS
               ) -> bool:
    """MiniLM probe and fine-tune (the app's rate, or *lr* and *epochs* for a diagnosis)
    against TF-IDF on the same split, for the splits of *seeds* seeds."""
    source = str(docstring_texts(tmp / "docstrings.csv"))
    scores: dict[str, list[float]] = {"probe": [], "finetune": [], "tfidf": []}
    seconds: dict[str, list[float]] = {k: [] for k in scores}
    for seed in range(seeds):
        for method in ("probe", "finetune"):
            project, dataset = project_for(source, "minilm", method, seed)
            if method == "finetune":  # the probe keeps the app's suggestion: cheap epochs
                project.training.epochs, project.training.batch_size = epochs, TEXT_BATCH
                project.training.lr = lr or project.training.lr
            result, took = in_fresh_thread(
                lambda p=project, d=dataset: train(p, d, tmp / "runs"))
            scores[method].append(float(result.metrics["test"]["accuracy"]))
            seconds[method].append(took)
            print(f"  seed {seed} MiniLM {method:8s} accuracy {scores[method][-1]:.3f} "
                  f"({took:.0f} s, {project.training.epochs} epochs, batch "
                  f"{project.training.batch_size}, lr {project.training.lr:g})", flush=True)
        start = time.perf_counter()
        scores["tfidf"].append(tfidf_accuracy(source, result.prepared))
        seconds["tfidf"].append(time.perf_counter() - start)
        print(f"  seed {seed} TF-IDF + LR     accuracy {scores['tfidf'][-1]:.3f}", flush=True)
    n = {k: len(v) for k, v in result.prepared.rows.items()}
    mean = {k: float(np.mean(v)) for k, v in scores.items()}
    print(f"text (docstrings, {len(TEXT_SOURCES)} topics; {n['train']} training / {n['val']} "
          f"validation / {n['test']} test texts; mean of {seeds} splits):")
    for method, title in (("probe", "MiniLM probe"), ("finetune", "MiniLM fine-tune"),
                          ("tfidf", "TF-IDF + logistic reg")):
        print(f"  {title:22s} accuracy {mean[method]:.3f}  ({np.mean(seconds[method]):.1f} s)")
    ok = mean["finetune"] >= mean["tfidf"]
    print(f"  target fine-tune >= TF-IDF: {'PASS' if ok else 'FAIL'} "
          f"({mean['finetune'] - mean['tfidf']:+.3f})")
    return ok


# -- 3. speed ------------------------------------------------------------------------------------
def backbone_net(prepared):
    """The app's fine-tuning network over EfficientNet-Lite0, pretrained weights loaded."""
    import torch

    from ml.models import backbones, build_model, build_spec
    from ml.runs.project import ModelConfig

    pre = prepared.preprocessor
    config = ModelConfig(backbone=backbones.EFFICIENTNET, train_mode="finetune")
    spec = build_spec(config, pre.model_input(), pre.n_outputs, prepared.task)
    torch.manual_seed(0)
    net = build_model(spec, pre.feature_mean, pre.feature_std)
    backbones.load_pretrained(net, spec.layers)
    return net


def plain_loop(net, x, y, xv, yv, epochs: int, batch: int, lr: float) -> float:
    """The reference: randperm, index, forward, loss, backward, Adam step; a validation pass
    per epoch. Returns seconds."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    xvt, yvt = torch.from_numpy(xv), torch.from_numpy(yv)
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=1e-4)
    start = time.perf_counter()
    for _ in range(epochs):
        net.train()
        perm = torch.randperm(len(xt))
        for i in range(0, len(xt), batch):
            idx = perm[i:i + batch]
            loss = nn.functional.cross_entropy(net(xt[idx]), yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            assert np.isfinite(nn.functional.cross_entropy(net(xvt), yvt).item())
    return time.perf_counter() - start


def trainer_fit(net, x, y, xv, yv, epochs: int, batch: int, lr: float) -> float:
    from ml.runs.project import TrainingConfig
    from ml.training import Trainer

    config = TrainingConfig(epochs=epochs, batch_size=batch, lr=lr, restore_best=False,
                            device="cpu")
    return Trainer(net, "classification", config).fit(x, y, xv, yv).seconds


def bench_throughput(tmp: Path, repeat: int) -> bool:
    """Trainer against the plain loop, alternated (drift of a shared machine hits both)."""
    from ml.data.dataset import load_dataset, prepare
    from ml.models import backbones
    from ml.runs.project import DataConfig

    source = str(write_photo_folders(tmp / "speed", 0, (16, 4, 4), overlap=True))
    prepared = prepare(load_dataset(source), DataConfig(source=source),
                       backbone=backbones.resolve(backbones.EFFICIENTNET))
    x, y, xv, yv = (prepared.x["train"], prepared.y["train"], prepared.x["val"],
                    prepared.y["val"])
    batch, lr = 16, 1e-4
    methods = {"plain PyTorch loop": plain_loop, "TrainDesk Trainer": trainer_fit}
    rates: dict[str, list[float]] = {m: [] for m in methods}
    for round_ in range(repeat + 1):  # round 0 warms up allocator, kernels and imports
        for name, run in methods.items():
            net = backbone_net(prepared)
            took = in_fresh_thread(lambda r=run, n=net: r(n, x, y, xv, yv, 1, batch, lr))
            if round_:
                rates[name].append(len(x) / took)
    ratio = statistics.median(b / a for a, b in zip(*rates.values(), strict=True))
    print(f"fine-tuning speed (EfficientNet-Lite0, {len(x)} images of 224 x 224, batch {batch}, "
          f"1 epoch + validation, median of {repeat} alternated rounds):")
    for name, values in rates.items():
        print(f"  {name:20s} {statistics.median(values):6.2f} samples/s")
    ok = ratio >= 0.95
    print(f"  Trainer / plain loop {ratio:.3f}  target >= 0.95: {'PASS' if ok else 'FAIL'}")
    return ok


def bench_probe_cache(tmp: Path) -> bool:
    """A linear probe run twice on the same images: features computed, then cached."""
    source = str(write_photo_folders(tmp / "probe", 1, (28, 6, 6), overlap=True))
    times = []
    for _ in range(2):
        def run():
            start = time.perf_counter()  # the data's loading is part of a run from the CLI
            project, dataset = project_for(source, "efficientnet_lite0", "probe")
            _, took = train(project, dataset, tmp / "runs")
            return took, time.perf_counter() - start
        times.append(in_fresh_thread(run))
    (job1, all1), (job2, all2) = times
    n = len(PHOTOS) * (28 + 6 + 6)
    print(f"linear probe, {n} images (features of the training and validation images cached):")
    print(f"  first run   {all1:6.1f} s (training job {job1:.1f} s)")
    print(f"  second run  {all2:6.1f} s (training job {job2:.1f} s)")
    ok = all1 / all2 >= 10
    print(f"  first / second {all1 / all2:.1f}x  target >= 10x: {'PASS' if ok else 'FAIL'}")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="images,text,speed",
                        help="comma-separated: images, text, speed (default: all); cache: only "
                             "the probe's cached rerun, which speed includes")
    parser.add_argument("--seeds", type=int, default=5,
                        help="crop sets (images) and splits (text) the scores are averaged "
                             "over (default 5)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of the speed comparison")
    parser.add_argument("--text-lr", type=float,
                        help="diagnosis only: MiniLM's fine-tuning rate instead of the app's")
    parser.add_argument("--text-epochs", type=int, default=TEXT_EPOCHS,
                        help=f"diagnosis only: MiniLM's fine-tuning epochs (default "
                             f"{TEXT_EPOCHS})")
    args = parser.parse_args(argv)
    parts = {p.strip() for p in args.only.split(",") if p.strip()}
    ok = True
    with tempfile.TemporaryDirectory(prefix="traindesk-bench-") as tmp:
        os.environ["TRAINDESK_HOME"] = str(Path(tmp) / "home")  # an empty feature cache
        tmp_path = Path(tmp)
        if "images" in parts:
            ok &= bench_images(tmp_path, args.seeds)
        if "text" in parts:
            ok &= bench_text(tmp_path, args.seeds, args.text_lr, args.text_epochs)
        if "speed" in parts:
            ok &= bench_throughput(tmp_path, args.repeat)
        if "speed" in parts or "cache" in parts:
            ok &= bench_probe_cache(tmp_path)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
