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


def _event(wall_time: float, step: int, *, version: str = "",
           scalars: dict[str, float] | None = None) -> bytes:
    body = _field(1, 1, struct.pack("<d", wall_time)) + _field(2, 0, _varint(int(step)))
    if version:
        body += _field(3, 2, version.encode())
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


def write_events(run_dir: Path, history: list[dict], started: float) -> Path:
    """Write the run's event file from *history* (epochs from 1); *started* is the run's
    start as a Unix time (each epoch's wall time is it plus the epoch's ``seconds``)."""
    data = _record(_event(started, 0, version="brain.Event:2"))
    for i, line in enumerate(history):
        wall = started + float(line.get("seconds") or 0.0)
        data += _epoch_record(wall, int(line.get("epoch") or i + 1),
                              tuple(curves(line).items()))
    path = Path(run_dir) / FOLDER / FILE
    atomic_write_bytes(path, data, error=RunError)
    return path
