"""Atomic file writes.

Every file TrainDesk writes goes through these helpers: the content is written to a temporary
file in the same directory, flushed to disk, and then moved over the target with ``os.replace``,
which is atomic on POSIX and Windows. A crash at any moment leaves either the old file or the new
one, never a half-written file.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..errors import TrainDeskError


def _read_umask() -> int:
    mask = os.umask(0o022)  # the only way to read it is to set it; put it straight back
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def _describe_os_error(path: Path, exc: OSError) -> str:
    reason = exc.strerror or str(exc)
    if exc.errno == 28:  # ENOSPC
        reason = "the disk is full"
    elif exc.errno == 122:  # EDQUOT
        reason = "the disk quota is used up"
    elif exc.errno is None and "written" in str(exc):
        # A short write reported by a library (numpy: "N requested and M written").
        reason = ("only part of it could be written: the disk is full or the file passed a "
                  "size limit")
    elif exc.errno == 27:  # EFBIG
        reason = "the file would pass the size limit set for this system or process"
    elif exc.errno in (13, 1):  # EACCES, EPERM
        reason = "permission denied"
    return f"Could not write {path}: {reason}. Free some space or choose another folder."


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, error: type[TrainDeskError] = TrainDeskError
                ) -> Iterator[Path]:
    """Yield a temporary path beside *path*; move it over *path* when the block succeeds.

    Use it for writers that insist on a file name of their own (``torch.save``, ONNX export).
    If the block raises, the temporary file is removed and *path* is untouched.

    Parameters
    ----------
    path : path-like
        The final file.
    error : type
        The :class:`TrainDeskError` subclass raised when the operating system refuses the write.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Keep the real suffix last: some writers (torch.export) insist on it.
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}",
                                   dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise error(_describe_os_error(path, exc)) from exc
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        _fsync_file(tmp_path)
        # mkstemp makes owner-only files; give the file the mode it had, or a normal new one.
        try:
            mode = path.stat().st_mode & 0o777
        except OSError:
            mode = 0o666 & ~_UMASK
        os.chmod(tmp_path, mode)
        os.replace(tmp_path, path)
    except OSError as exc:
        _remove_quietly(tmp_path)
        raise error(_describe_os_error(path, exc)) from exc
    except BaseException:
        _remove_quietly(tmp_path)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *,
                       error: type[TrainDeskError] = TrainDeskError) -> None:
    """Write *data* to *path* atomically."""
    with atomic_path(path, error=error) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)


def atomic_write_text(path: str | os.PathLike, text: str, *,
                      error: type[TrainDeskError] = TrainDeskError) -> None:
    """Write *text* (UTF-8) to *path* atomically."""
    atomic_write_bytes(path, text.encode("utf-8"), error=error)


def atomic_write_json(path: str | os.PathLike, obj: Any, *,
                      error: type[TrainDeskError] = TrainDeskError) -> None:
    """Write *obj* as indented JSON to *path* atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, allow_nan=False) + "\n", error=error)


def atomic_write_with(path: str | os.PathLike, writer: Callable[[Path], None], *,
                      error: type[TrainDeskError] = TrainDeskError) -> None:
    """Call ``writer(tmp_path)`` and move the result over *path* atomically."""
    with atomic_path(path, error=error) as tmp:
        writer(tmp)


def folder_beside(out: str | os.PathLike) -> Path:
    """A new, empty folder beside *out* (same file system, so it can be moved there with
    :func:`os.replace` once whole), readable as any folder the user makes (``mkdtemp`` alone
    makes it owner-only).

    Raises
    ------
    OSError
        When the parent cannot be written.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    os.chmod(work, 0o777 & ~_UMASK)
    return work


def _fsync_file(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()
