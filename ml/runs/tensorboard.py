"""TensorBoard event files for a run: ``RUN_DIR/tensorboard/events.out.tfevents.traindesk``,
so ``tensorboard --logdir RUNS_FOLDER`` shows every run's curves beside the others.

The file is made from ``history.jsonl`` each time the history is written (by
:meth:`ml.runs.folder.RunFolder.write_history`), whole and atomically: a resumed run never
repeats an epoch in it, and a kill leaves the previous version. No TensorBoard or protobuf
package is needed to write it: an event file is a sequence of TFRecords (a length, its masked
CRC-32C, the data, its masked CRC-32C), each holding an ``Event`` message in protobuf's wire
format - ``wall_time`` (1, double), ``step`` (2, int64), ``file_version`` (3, string) or
``summary`` (5) with ``value`` (1) entries of ``tag`` (1, string) and ``simple_value``
(2, float).

Tags: ``loss`` and training numbers as ``train/...``, ``val_...`` as ``val/...``, the rate as
``train/lr``; step = epoch.

The run's settings go in as TensorBoard's hyperparameters (its HPARAMS tab, which compares
runs by them): a ``_hparams_/session_start_info`` value whose metadata names the ``hparams``
plugin (``plugin_data`` (1): ``plugin_name`` (1), ``content`` (2)); the content is an
``HParamsPluginData`` - ``version`` (1) 0, ``session_start_info`` (3) with ``hparams`` (1, a map
of name to ``google.protobuf.Value``: ``number_value`` (2, double), ``string_value`` (3),
``bool_value`` (4)) and ``start_time_secs`` (5). TensorBoard finds the metrics (the curves'
tags) by itself. The model graph is not written (it would need TensorBoard's graph protobufs).
"""

from __future__ import annotations

import functools
import math
import struct
from pathlib import Path

from ..errors import RunError
from ..system.fileio import atomic_write_bytes

FOLDER, FILE = "tensorboard", "events.out.tfevents.traindesk"
#: History keys that are not curves.
NOT_CURVES = {"epoch", "seconds", "epoch_seconds", "sample", "tokens"}


def _crc32c_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), as TFRecord uses."""
    c = 0xFFFFFFFF
    for b in data:
        c = _TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def _masked(data: bytes) -> int:
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, wire: int, payload: bytes) -> bytes:
    key = _varint(number << 3 | wire)
    if wire == 2:
        return key + _varint(len(payload)) + payload
    return key + payload


def _hparam_value(value) -> bytes:
    """A ``google.protobuf.Value``."""
    if isinstance(value, bool):
        return _field(4, 0, _varint(int(value)))
    if isinstance(value, (int, float)):
        return _field(2, 1, struct.pack("<d", float(value)))
    return _field(3, 2, str(value).encode("utf-8"))


def _hparams_summary(hparams: dict, started: float) -> bytes:
    """The ``Summary`` that tells TensorBoard's HPARAMS tab this run's settings."""
    entries = b"".join(_field(1, 2, _field(1, 2, name.encode("utf-8"))
                              + _field(2, 2, _hparam_value(value)))
                       for name, value in hparams.items())
    start_info = entries + _field(5, 1, struct.pack("<d", started))
    content = _field(1, 0, _varint(0)) + _field(3, 2, start_info)
    metadata = _field(1, 2, _field(1, 2, b"hparams") + _field(2, 2, content))
    return _field(1, 2, _field(1, 2, HPARAMS_TAG.encode()) + _field(9, 2, metadata))


HPARAMS_TAG = "_hparams_/session_start_info"


def _event(wall_time: float, step: int, *, version: str = "",
           scalars: dict[str, float] | None = None, summary: bytes = b"") -> bytes:
    body = _field(1, 1, struct.pack("<d", wall_time)) + _field(2, 0, _varint(int(step)))
    if version:
        body += _field(3, 2, version.encode())
    if summary:
        body += _field(5, 2, summary)
    if scalars:
        values = b"".join(_field(1, 2, _field(1, 2, tag.encode()) +
                                 _field(2, 5, struct.pack("<f", value)))
                          for tag, value in scalars.items())
        body += _field(5, 2, values)
    return body


def _record(data: bytes) -> bytes:
    length = struct.pack("<Q", len(data))
    return (length + struct.pack("<I", _masked(length)) + data
            + struct.pack("<I", _masked(data)))


def tag_for(key: str) -> str:
    if key.startswith("val_"):
        return "val/" + key[4:]
    return "train/" + key.removeprefix("train_")


def curves(line: dict) -> dict[str, float]:
    """The numbers of one history line, by TensorBoard tag."""
    return {tag_for(k): float(v) for k, v in line.items()
            if k not in NOT_CURVES and isinstance(v, (int, float)) and not isinstance(v, bool)
            and math.isfinite(float(v))}


@functools.lru_cache(maxsize=8192)
def _epoch_record(wall: float, step: int, scalars: tuple[tuple[str, float], ...]) -> bytes:
    """One epoch's record, kept: the file is rewritten every epoch, its old epochs unchanged."""
    return _record(_event(wall, step, scalars=dict(scalars)))


def hparams_of(settings: dict) -> dict[str, float | str | bool]:
    """A run's settings as TensorBoard hyperparameters: ``section.key`` for every plain value
    of the model, training and language-model sections (lists joined), and the data's name."""
    out: dict[str, float | str | bool] = {}
    source = str((settings.get("data") or {}).get("source") or "")
    if source:
        out["data"] = source.rsplit("/", 1)[-1][:200]
    for section in ("model", "training", "language_model"):
        for key, value in sorted((settings.get(section) or {}).items()):
            if isinstance(value, (list, tuple)) and all(
                    isinstance(v, (int, float, str)) for v in value):
                value = ",".join(map(str, value))
            if isinstance(value, (bool, int, float, str)) and value != "":
                out[f"{section}.{key}"] = value if not isinstance(value, str) else value[:200]
    return out


def write_events(run_dir: Path, history: list[dict], started: float,
                 hparams: dict | None = None) -> Path:
    """Write the run's event file from *history* (epochs from 1); *started* is the run's
    start as a Unix time (each epoch's wall time is it plus the epoch's ``seconds``);
    *hparams* (see :func:`hparams_of`) for TensorBoard's HPARAMS tab."""
    data = _record(_event(started, 0, version="brain.Event:2"))
    if hparams:
        data += _record(_event(started, 0, summary=_hparams_summary(hparams, started)))
    for i, line in enumerate(history):
        wall = started + float(line.get("seconds") or 0.0)
        data += _epoch_record(wall, int(line.get("epoch") or i + 1),
                              tuple(curves(line).items()))
    path = Path(run_dir) / FOLDER / FILE
    atomic_write_bytes(path, data, error=RunError)
    return path
