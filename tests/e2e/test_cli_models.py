"""The model designer on the command line: presets, a layer file, transfer learning, and the
training settings - each bad input one readable line and exit 2."""

import json

from ml.models.layers import LAYER_TYPES
from ml.models.presets import PRESET_INFO
from tests.conftest import run_cli, run_main
from tests.e2e.test_cli import one_line_error


def test_models_lists_every_preset_and_layer_type():
    proc = run_main("models")
    assert proc.returncode == 0, proc.stderr
    words = {line.split()[0] for line in proc.stdout.splitlines() if line.startswith("  ")}
    assert set(PRESET_INFO) <= words and set(LAYER_TYPES) <= words


def test_train_with_a_layer_file_and_settings_then_transfer_from_the_run(tmp_path):
    spec = tmp_path / "net.json"
    spec.write_text(json.dumps({"layers": [{"type": "linear", "out_features": 12},
                                           {"type": "gelu"}, {"type": "layernorm"},
                                           {"type": "linear", "out_features": 3}]}))
    first = tmp_path / "first"
    proc = run_main("train", "--data", "sample:iris", "--model-spec", str(spec), "--epochs", "3",
                    "--optimizer", "sgd", "--nesterov", "--momentum", "0.9", "--lr", "0.05",
                    "--schedule", "cosine", "--warmup-epochs", "1", "--label-smoothing", "0.1",
                    "--grad-clip", "1.0", "--out", str(first))
    assert proc.returncode == 0, proc.stderr
    config = json.loads((first / "config.json").read_text())
    assert config["model"]["layers"][0] == {"type": "linear", "out_features": 12}
    assert config["training"]["schedule"] == "cosine" and config["training"]["nesterov"]
    second = tmp_path / "second"  # the later steps in this process (the same code, faster)
    proc = run_cli("train", "--data", "sample:iris", "--model-spec", str(spec), "--epochs", "2",
                   "--init-from", str(first), "--freeze-epochs", "1", "--out", str(second))
    assert proc.returncode == 0, proc.stderr
    assert "Transfer learning: From first: loaded" in proc.stderr
    proc = run_cli("train", "--data", "sample:iris", "--model", "resnet", "--epochs", "1")
    one_line_error(proc, "needs image data")


def test_bad_model_inputs_are_one_line(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "empty.json").write_text("[]")
    (tmp_path / "wrong.json").write_text(json.dumps([{"type": "conv2d"},
                                                     {"type": "linear", "out_features": 3}]))
    (tmp_path / "weights.pt").write_bytes(b"garbage")
    for extra, words in ((["--model-spec", str(tmp_path / "bad.json")], "not a readable JSON"),
                         (["--model-spec", str(tmp_path / "empty.json")], "list of layers"),
                         (["--model-spec", str(tmp_path / "missing.json")], "not found"),
                         (["--model-spec", str(tmp_path / "wrong.json")], "needs an image"),
                         (["--init-from", str(tmp_path / "weights.pt")], "only tensors"),
                         (["--init-from", str(tmp_path / "nothing")], "Not found"),
                         (["--loss", "mse"], "Choose cross_entropy or bce")):
        # The first as a user runs it; the others in this process (the same code, faster).
        run = run_main if words == "not a readable JSON" else run_cli
        one_line_error(run("train", "--data", "sample:iris", "--epochs", "1", *extra), words)
    proc = run_cli("train", "--data", "sample:iris", "--model", "quantum")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


def test_new_layer_types_export_and_check_themselves(tmp_path):
    """A Transformer text model and a ResNet go through ONNX export and its check (in this
    process: train and export run as a user runs them in tests/e2e/test_cli.py)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    words = np.array([f"w{i}" for i in range(60)])
    label = rng.integers(0, 2, 300)
    texts = [" ".join(rng.choice(words, 8)) + (" great" if y else " awful") for y in label]
    reviews = tmp_path / "reviews.csv"
    pd.DataFrame({"review": texts, "sentiment": np.where(label, "pos", "neg")}).to_csv(
        reviews, index=False)
    for data, model in ((str(reviews), "transformer"), ("sample:digits", "resnet")):
        run = tmp_path / model
        extra = ["--target", "sentiment"] if model == "transformer" else []
        proc = run_cli("train", "--data", data, *extra, "--model", model, "--epochs", "1",
                       "--quiet", "--out", str(run))
        assert proc.returncode == 0, proc.stderr
        proc = run_cli("export", str(run), "--format", "onnx", "--out",
                       str(tmp_path / f"{model}.onnx"))
        assert proc.returncode == 0, proc.stderr
        assert "identical predictions" in proc.stdout


def test_early_stopping_on_the_command_line(tmp_path):
    run = tmp_path / "run"
    proc = run_cli("train", "--data", "sample:iris", "--epochs", "400", "--lr", "0.05",
                   "--early-stopping", "2", "--quiet", "--out", str(run))
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["early_stopped"] and metrics["status"] == "finished"
    assert metrics["epochs_completed"] < 400
