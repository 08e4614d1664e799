"""Run folders written as one unit: ``evaluations.csv``, ``front.csv``, then ``run.json``.

A run is written into a temporary sibling folder and renamed into place, so a reader sees the
old run or the new one, never a mix. ``run.json`` is written last and carries the sha256 and row
count of the other two files; :func:`read_run` checks them, so a folder whose files do not belong
together (a full disk, a copy cut short, an edit) is refused rather than scored. Where ``out``
already holds other files (a user's own folder), the files are replaced one by one, each
atomically, and the checksums are what makes a mixed folder detectable.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from hwnas.search import HwnasError

__all__ = ["RUN_FILES", "FOLDER_KINDS", "check_out_folder", "check_run_config",
           "config_differences", "write_run", "read_run", "verify_run", "replace_folder"]

#: the data files of a run folder, in the order they are written; run.json follows them
RUN_FILES = ("evaluations.csv", "front.csv")


#: the file that marks each kind of output folder, and what to call it in a message
FOLDER_KINDS: dict[str, str] = {
    "run.json": "a search run",
    "compare.json": "a compare folder",
    "profile.sqlite": "a device profile",
    "deploy.json": "a deploy folder",
}


def check_out_folder(out: str | os.PathLike[str], mine: str | None,
                     files: tuple[str, ...] = ()) -> None:
    """Refuse an ``--out`` folder that another command's output lives in, before any work.

    A search written into a compare folder (or a compare into a run) mixes the two, and later
    commands read the wrong one. ``mine`` is the marker file of the command writing (``None``:
    a command whose folder has no marker, e.g. a report); ``files`` are names the command
    writes, none of which may be a folder there.

    Raises:
        HwnasError: ``out`` is a file, holds another kind's marker, or has a folder where one
            of ``files`` goes.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise HwnasError(f"--out {out} is a file; valid: a new folder or one this command wrote")
    if not out.is_dir():
        return
    for marker, what in FOLDER_KINDS.items():
        if marker != mine and (out / marker).exists():
            raise HwnasError(f"--out {out} holds {what} ({marker}); writing here would mix the "
                             "two: choose another --out")
    for name in files:
        if (out / name).is_dir():
            raise HwnasError(f"--out {out}: {name} is a folder there, where this command writes "
                             "a file; choose another --out")


def config_differences(stored: Mapping[str, Any], config: Mapping[str, Any]) -> list[str]:
    """The keys whose values differ between a run's recorded config and ``config`` (compared as
    JSON, the way ``run.json`` holds it)."""
    now = json.loads(json.dumps(dict(config), default=str))
    return [k for k in sorted(set(stored) | set(now)) if stored.get(k) != now.get(k)]


def check_run_config(out: str | os.PathLike[str], config: Mapping[str, Any]) -> None:
    """Refuse to replace a run folder made with other settings (a rerun of the same search
    replaces its run: a search is deterministic for its seed).

    Raises:
        HwnasError: ``out/run.json`` exists and records another configuration, or cannot be read.
    """
    path = Path(out) / "run.json"
    if not path.is_file():
        return
    try:
        stored = json.loads(path.read_text()).get("config")
    except (OSError, ValueError, AttributeError):
        raise HwnasError(f"--out {out} holds a run.json that cannot be read; choose another "
                         "--out (nothing was replaced)") from None
    if not isinstance(stored, dict):
        raise HwnasError(f"--out {out} holds a run.json without its configuration; choose "
                         "another --out (nothing was replaced)")
    now = json.loads(json.dumps(dict(config), default=str))
    diff = [f"{k}: {json.dumps(stored.get(k))} stored, {json.dumps(now.get(k))} now"
            for k in config_differences(stored, now)]
    if diff:
        raise HwnasError(f"--out {out} holds a run made with other settings ({'; '.join(diff)}); "
                         "choose another --out, or delete that folder to replace it")


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _rows(text: str) -> int:
    return max(0, text.count("\n") - 1)  # minus the header


def _write_bytes(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _atomic_bytes(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        _write_bytes(Path(tmp), data)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_run(out: str | os.PathLike[str], files: Mapping[str, str],
              record: Mapping[str, Any]) -> dict[str, Any]:
    """Write a run folder: ``files`` (name -> CSV text) then ``run.json`` of ``record`` plus
    ``files: {name: {sha256, rows, bytes}}``; returns the record as written.

    Raises:
        HwnasError: the folder cannot be written (names the path and the reason).
    """
    out = Path(out)
    blobs = {name: text.encode() for name, text in files.items()}
    record = {**record, "files": {name: {"sha256": _digest(data), "rows": _rows(files[name]),
                                         "bytes": len(data)}
                                  for name, data in blobs.items()}}
    run_json = (json.dumps(record, indent=2, default=str) + "\n").encode()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        ours = {*blobs, "run.json"}
        # the working folder (``--out .``) or one above it cannot be renamed away: replace the
        # files in it instead
        here = Path(os.path.abspath(out))
        in_use = here == Path.cwd() or here in Path.cwd().parents
        if out.is_dir() and (in_use or any(p.name not in ours for p in out.iterdir())):
            # someone else's files live here too: replace ours one by one, run.json last
            for name, data in blobs.items():
                _atomic_bytes(out / name, data)
            _atomic_bytes(out / "run.json", run_json)
            return record
        tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
        try:
            os.chmod(tmp, 0o777 & ~_umask())
            for name, data in blobs.items():
                _write_bytes(tmp / name, data)
            _write_bytes(tmp / "run.json", run_json)
            replace_folder(tmp, out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    except OSError as e:
        raise HwnasError(f"cannot write the run folder {out}: {e.strerror or e}") from None
    return record


def verify_run(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The run record of ``folder`` after checking its files against it.

    Raises:
        HwnasError: no readable ``run.json``, or a file missing, truncated or not the one
            ``run.json`` describes.
    """
    folder = Path(folder)
    try:
        record = json.loads((folder / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:  # missing, unreadable, not UTF-8, not JSON
        raise HwnasError(f"{folder} is not a finished hwnas run (run.json + evaluations.csv): "
                         f"{type(e).__name__}: {e}") from None
    files = record.get("files") if isinstance(record, dict) else None
    if (not isinstance(record, dict) or not isinstance(record.get("config"), dict)
            or not isinstance(record["config"].get("objectives"), list)
            or not isinstance({} if files is None else files, dict)
            or not all(isinstance(w, dict) for w in (files or {}).values())):
        raise HwnasError(f"{folder}/run.json is not an hwnas run record (an object with config, "
                         "objectives and per-file checksums); run it again")
    for name, want in (files or {}).items():
        if name not in RUN_FILES:  # a record naming other paths is not one hwnas wrote
            raise HwnasError(f"{folder}/run.json names {name!r}; valid: {', '.join(RUN_FILES)}")
        try:
            data = (folder / name).read_bytes()
        except OSError as e:
            raise HwnasError(f"{folder}: {name} is missing or unreadable ({e.strerror}); "
                             "the run is incomplete, run it again") from None
        if len(data) != want.get("bytes") or _digest(data) != want.get("sha256"):
            raise HwnasError(f"{folder}: {name} ({len(data)} bytes) is not the file run.json "
                             f"describes ({want.get('bytes')} bytes, {want.get('rows')} rows): "
                             "truncated or replaced; run it again")
    return record


def read_run(folder: str | os.PathLike[str]) -> tuple[dict[str, Any], pd.DataFrame]:
    """A finished run's record and evaluations, checked against ``run.json``'s checksums
    (folders written before checksums existed are read unchecked).

    Raises:
        HwnasError: the folder is not a finished, intact ``hwnas search`` run.
    """
    folder = Path(folder)
    record = verify_run(folder)
    try:
        evaluations = pd.read_csv(folder / "evaluations.csv")
    except (OSError, ValueError) as e:
        raise HwnasError(f"{folder} is not a finished hwnas run (run.json + evaluations.csv): "
                         f"{e}") from None
    return record, evaluations


def replace_folder(tmp: Path, out: Path) -> None:
    """Put the finished folder ``tmp`` at ``out`` (same file system): an existing ``out`` is moved
    aside first and removed only once ``tmp`` is in place, so a reader sees the old or the new
    folder, never a half-written one."""
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".old"))
        try:
            os.replace(out, old / "previous")
        except BaseException:
            old.rmdir()  # nothing moved: leave no empty .old folder behind
            raise
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
