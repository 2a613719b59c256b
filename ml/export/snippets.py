""""Copy as code": a short Python program that loads an export and predicts.

The snippet is complete - paste it into a file and run it - and predicts one real test example
(encoded as the export expects) when the input is small enough to spell out; the Export page shows
it next to the export.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: Inputs up to this many values are written into the snippet; bigger ones are zeros.
MAX_LITERAL = 64


def _example(example: np.ndarray | None, shape: list, dtype: str) -> str:
    np_dtype = "np.int64" if dtype == "int64" else "np.float32"
    if example is not None and example.size <= MAX_LITERAL:
        values = np.asarray(example).reshape(-1)
        if dtype == "int64":
            text = ", ".join(str(int(v)) for v in values)
        else:
            # The shortest text that reads back as the same float32: the exact input.
            text = ", ".join(np.format_float_positional(np.float32(v), unique=True, trim="-")
                             for v in values)
        dims = ", ".join(str(int(d)) for d in np.asarray(example).shape)
        return (f"{_ENCODED}# one test example, already encoded as the model takes it\n"
                f"x = np.array([{text}], dtype={np_dtype}).reshape(1, {dims})")
    dims = ", ".join(str(int(d)) for d in shape)
    return (f"{_ENCODED}# your input, encoded as preprocessing.json describes: shape "
            f"(batch, {dims})\n"
            f"x = np.zeros((1, {dims}), dtype={np_dtype})")


#: Above the model formats' input: they take encoded values, not raw ones.
_ENCODED = ("# The model takes ENCODED values, not raw ones: preprocessing.json beside it says\n"
            "# how to encode raw input. For raw CSVs, images or texts as they are, export the\n"
            "# Standalone package: its predict.py encodes them.\n")


def code_snippet(fmt: str, path: str | Path, *, task: str, class_names: list[str],
                 input_shape: list, input_dtype: str = "float32",
                 example: np.ndarray | None = None, threshold: float | None = None) -> str:
    """Python that loads the export at *path* (format *fmt*) and predicts *example* (one encoded
    input, without the batch axis) or a placeholder of the right shape; a two-class model
    decides at *threshold*, as the app does."""
    path = str(path)
    x = _example(example, input_shape, input_dtype)
    if task == "classification" and threshold is not None and len(class_names) == 2:
        show = (f"classes = {class_names!r}\n"
                f"threshold = {threshold:g}  # the decision threshold chosen for this run\n"
                f"print(classes[int(probabilities[0, 1] >= threshold)], "
                f"probabilities[0].round(3))")
        name = "probabilities"
    elif task == "classification":
        show = (f"classes = {class_names!r}\n"
                f"print(classes[int(probabilities[0].argmax())], probabilities[0].round(3))")
        name = "probabilities"
    else:
        show = "print(prediction[0, 0])"
        name = "prediction"
    if fmt == "package":
        folder = Path(path)
        return (f"# In a terminal, with only numpy and onnxruntime (and Pillow for images):\n"
                f"#   pip install -r {folder / 'requirements.txt'}\n"
                f"#   python {folder / 'predict.py'} INPUT --out predictions.csv\n"
                f"# INPUT is raw data: a CSV with the columns, an image or folder, a text file.\n"
                + (f"# It says {class_names[1]} from a probability of {threshold:.2f} on (the "
                   f"decision threshold; add --threshold P for another).\n"
                   if threshold is not None and len(class_names) == 2 else "") +
                f"import subprocess, sys\n\n"
                f"subprocess.run([sys.executable, {str(folder / 'predict.py')!r}, 'INPUT.csv',\n"
                f"                '--out', 'predictions.csv'], check=True)\n")
    if fmt == "onnx":
        return (f"import numpy as np\nimport onnxruntime as ort\n\n"
                f"session = ort.InferenceSession({path!r})\n{x}\n"
                f"{name} = session.run(None, {{'input': x}})[0]\n{show}\n")
    if fmt == "pt2":
        return (f"import numpy as np\nimport torch\n\n"
                f"model = torch.export.load({path!r}).module()\n{x}\n"
                f"with torch.no_grad():\n"
                f"    {name} = model(torch.from_numpy(x)).numpy()\n{show}\n")
    sidecar = str(Path(path).with_name(Path(path).stem + ".preprocessing.json"))
    return ("# safetensors holds the weights; the layers are described in the JSON beside it.\n"
            "# Rebuilding needs TrainDesk's ml package (or the same layers written by hand):\n"
            f"import json\n\nimport numpy as np\nimport torch\nfrom safetensors.torch import "
            f"load_file\n\nfrom ml.models.spec import InferenceModel, ModelSpec, build_model\n\n"
            f"doc = json.load(open({sidecar!r}))\n"
            f"net = build_model(ModelSpec.from_dict(doc['model_spec']))\n"
            f"net.load_state_dict(load_file({path!r}))\n"
            f"scaling = doc['preprocessing']['target_scaling']\n"
            f"model = InferenceModel(net, doc['task'], scaling['mean'], scaling['std']).eval()\n"
            f"{x}\nwith torch.no_grad():\n"
            f"    {name} = model(torch.from_numpy(x)).numpy()\n{show}\n")
