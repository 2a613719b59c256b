"""The sample datasets that ship inside the application (no network needed)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

import pandas as pd

from ..errors import DataError
from ..system.resources import resource_path

SAMPLE_PREFIX = "sample:"


@dataclass(frozen=True)
class SampleInfo:
    """Description of one built-in sample dataset."""

    name: str
    title: str
    description: str
    file: str
    target: str
    task: str
    kind: str = "tabular"
    image_shape: tuple[int, ...] | None = None
    pixel_range: tuple[float, float] | None = None

    @property
    def source(self) -> str:
        return SAMPLE_PREFIX + self.name


@lru_cache(maxsize=1)
def list_samples() -> tuple[SampleInfo, ...]:
    """Return the built-in samples, in catalogue order."""
    with open(resource_path("samples", "samples.json"), encoding="utf-8") as fh:
        catalog = json.load(fh)
    out = []
    for entry in catalog["samples"]:
        entry = dict(entry)
        if entry.get("image_shape"):
            entry["image_shape"] = tuple(entry["image_shape"])
        if entry.get("pixel_range"):
            entry["pixel_range"] = tuple(entry["pixel_range"])
        out.append(SampleInfo(**entry))
    return tuple(out)


def get_sample(name: str) -> SampleInfo:
    """Return the sample called *name* (with or without the ``sample:`` prefix)."""
    if name.startswith(SAMPLE_PREFIX):
        name = name[len(SAMPLE_PREFIX):]
    for info in list_samples():
        if info.name == name:
            return info
    known = ", ".join(s.name for s in list_samples())
    raise DataError(f"There is no sample dataset called {name!r}. Samples: {known}.")


def load_sample_frame(name: str) -> pd.DataFrame:
    """Read a sample's table."""
    info = get_sample(name)
    return pd.read_csv(resource_path("samples", info.file))
