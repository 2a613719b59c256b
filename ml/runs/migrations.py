"""The run folder format's versions and the migrations between them: the one place they live.

A migration works on the two description documents (``run.json`` and ``config.json``) in
memory: opening an older run never writes anything. What it changed reaches the disk the next
time the run is saved (:meth:`ml.runs.folder.RunFolder.update`), together with checksums for
tensor files that were written without one. A folder from a newer TrainDesk is refused, naming
the version that wrote it.

The project file's migrations are in :mod:`ml.runs.project` (``MIGRATIONS``), the settings
file's in :mod:`gui.settings`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import RunError
from .weights import load_checkpoint, load_weights, save_checkpoint, save_weights

RUN_FORMAT = "traindesk-run"
CONFIG_FORMAT = "traindesk-run-config"
RUN_VERSION = 2

Docs = tuple[dict[str, Any], dict[str, Any]]

#: ``RUN_MIGRATIONS[v]`` turns version-``v`` documents ``(info, config)`` into version ``v + 1``.
RUN_MIGRATIONS: dict[int, Callable[[dict, dict], Docs]] = {}


def _run_v1_to_v2(info: dict, config: dict) -> Docs:
    """Version 1 had an unversioned config.json, rewritten on resume, so it already holds the
    latest settings: nothing to list under ``changes``. Its tensor files may predate checksums;
    they are trusted once, by this migration, and given one when the run is next saved."""
    config = {"format": CONFIG_FORMAT, "version": 2, "written_by": "0.1", **config}
    info = {**info, "changes": list(info.get("changes") or [])}
    return info, config


RUN_MIGRATIONS[1] = _run_v1_to_v2


def _version(doc: dict, name: str, run_dir: Path) -> int:
    version = doc.get("version", 1 if name == "config.json" else None)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise RunError(f"{name} in {run_dir} is damaged (no valid version).")
    return version


def migrate_run(info: dict, config: dict, run_dir: Path) -> tuple[dict, dict, dict | None]:
    """Bring a run's documents up to :data:`RUN_VERSION`, in memory.

    Returns
    -------
    info, config, pending
        The current-version documents, and what is still to be written (``None`` for a folder
        that was already current): ``{"from": version, "trust_unchecked": bool}``.

    Raises
    ------
    RunError
        For damaged versions, or a folder written by a newer TrainDesk.
    """
    version = _version(info, "run.json", run_dir)
    newest = max(version, _version(config, "config.json", run_dir))
    if newest > RUN_VERSION:
        writer = info.get("written_by") or config.get("written_by")
        writer = f"{writer}, " if isinstance(writer, str) and len(writer) < 40 else ""
        raise RunError(f"The run {run_dir.name} was written by a newer TrainDesk ({writer}run "
                       f"format {newest}); this TrainDesk ({__version__}) reads run formats up "
                       f"to {RUN_VERSION}. Update TrainDesk to open it.")
    if version == RUN_VERSION:
        return info, config, None
    found = version
    info, config = copy.deepcopy(info), copy.deepcopy(config)
    while version < RUN_VERSION:
        step = RUN_MIGRATIONS.get(version)
        if step is None:
            raise RunError(f"Run format version {version} ({run_dir.name}) can no longer be "
                           f"read.")
        info, config = step(info, config)
        version += 1
    info["version"] = config["version"] = RUN_VERSION
    return info, config, {"from": found, "trust_unchecked": found < 2}


def add_checksum(file: Path) -> bool:
    """Give a tensors file written before checksums one (rewritten atomically); return whether
    it needed one. Called only by a migration, which is what vouches for the content."""
    if file.suffix == ".pt":
        from torch import load

        doc = load(file, map_location="cpu", weights_only=True)
        if isinstance(doc, dict) and set(doc) == {"state", "digest"}:
            load_checkpoint(file)  # checks the one it has
            return False
        save_checkpoint(file, doc)
        return True
    from safetensors import safe_open

    with safe_open(str(file), framework="pt") as fh:
        has = "digest" in (fh.metadata() or {})
    state = load_weights(file)  # checks the checksum it has
    if not has:
        save_weights(file.parent, state, file.name)
    return not has
