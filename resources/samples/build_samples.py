"""Regenerate the sample datasets that ship with TrainDesk (a developer tool, not used at run time).

The five classic datasets come from scikit-learn's bundled copies (no download), written as plain
CSV with readable column and class names so that users can open them in any spreadsheet.

    .venv/bin/python resources/samples/build_samples.py
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from sklearn import datasets

HERE = Path(__file__).resolve().parent


def _clean(name: str) -> str:
    return name.strip().replace(" ", "_").replace("(", "").replace(")", "")


def main() -> None:
    catalog = []

    digits = datasets.load_digits()
    cols = [f"pixel_{r}_{c}" for r in range(8) for c in range(8)]
    df = pd.DataFrame(digits.data.astype("int64"), columns=cols)
    df["digit"] = digits.target
    df.to_csv(HERE / "digits.csv", index=False)
    catalog.append(dict(
        name="digits", file="digits.csv", title="Handwritten digits (8x8)", target="digit",
        task="classification", kind="image", image_shape=[1, 8, 8], pixel_range=[0, 16],
        description="1,797 scanned handwritten digits 0-9 as 8x8 grayscale images "
                    "(UCI Optical Recognition of Handwritten Digits)."))

    iris = datasets.load_iris()
    df = pd.DataFrame(iris.data, columns=["sepal_length", "sepal_width", "petal_length",
                                          "petal_width"])
    df["species"] = [iris.target_names[t] for t in iris.target]
    df.to_csv(HERE / "iris.csv", index=False)
    catalog.append(dict(
        name="iris", file="iris.csv", title="Iris flowers", target="species",
        task="classification", kind="tabular",
        description="150 iris flowers, 4 measurements, 3 species (Fisher, 1936)."))

    wine = datasets.load_wine()
    df = pd.DataFrame(wine.data, columns=[_clean(c) for c in wine.feature_names])
    df["cultivar"] = [f"cultivar_{t + 1}" for t in wine.target]
    df.to_csv(HERE / "wine.csv", index=False)
    catalog.append(dict(
        name="wine", file="wine.csv", title="Wine cultivars", target="cultivar",
        task="classification", kind="tabular",
        description="178 Italian wines, 13 chemical measurements, 3 cultivars (UCI Wine)."))

    bc = datasets.load_breast_cancer()
    df = pd.DataFrame(bc.data, columns=[_clean(c) for c in bc.feature_names])
    df["diagnosis"] = [bc.target_names[t] for t in bc.target]
    df.to_csv(HERE / "breast_cancer.csv", index=False)
    catalog.append(dict(
        name="breast_cancer", file="breast_cancer.csv", title="Breast cancer diagnosis",
        target="diagnosis", task="classification", kind="tabular",
        description="569 breast-mass biopsies, 30 cell-nucleus measurements, malignant or "
                    "benign (UCI Breast Cancer Wisconsin, Diagnostic)."))

    diab = datasets.load_diabetes(scaled=False)
    df = pd.DataFrame(diab.data, columns=["age", "sex", "bmi", "blood_pressure", "s1_tc",
                                          "s2_ldl", "s3_hdl", "s4_tch", "s5_ltg", "s6_glucose"])
    df["sex"] = df["sex"].astype("int64")
    df["progression"] = diab.target
    df.to_csv(HERE / "diabetes.csv", index=False)
    catalog.append(dict(
        name="diabetes", file="diabetes.csv", title="Diabetes progression", target="progression",
        task="regression", kind="tabular",
        description="442 diabetes patients, 10 baseline measurements; predict disease "
                    "progression one year later (Efron et al., 2004)."))

    (HERE / "samples.json").write_text(json.dumps({"version": 1, "samples": catalog}, indent=2)
                                       + "\n")


if __name__ == "__main__":
    main()
