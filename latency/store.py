"""The profile store: every measurement committed to SQLite as it is made.

One file per profile directory, in WAL mode, one transaction per measurement and a primary key on
(architecture, round): a profiler killed at any moment (SIGKILL included) loses at most the
architecture in flight, a rerun continues where it stopped, and no row is ever duplicated.
"""

from __future__ import annotations

import datetime as _dt
import errno
import fcntl
import json
import math
import os
import sqlite3
from pathlib import Path
from typing import Any

import pandas as pd

from hwnas.search import HwnasError

from .protocol import Measurement

__all__ = ["ProfileStore", "StoreError", "ProfileLock", "LockedError"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS measurement (
    arch TEXT NOT NULL, idx INTEGER, round INTEGER NOT NULL, status TEXT NOT NULL,
    median_ms REAL, p10_ms REAL, p90_ms REAL, iqr_ms REAL, cv REAL, n INTEGER, ci_rel REAL,
    converged INTEGER, samples TEXT, error TEXT, measured_at TEXT NOT NULL, seconds REAL,
    ref_ms REAL, ratio REAL,
    PRIMARY KEY (arch, round)
);
CREATE TABLE IF NOT EXISTS reference (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, round INTEGER NOT NULL, position INTEGER NOT NULL,
    median_ms REAL NOT NULL, measured_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

#: columns added after the first stores were written: (name, SQL type), added on open when
#: missing, so an older store resumes (its earlier rows read NULL there)
_ADDED_COLUMNS = (
    # the agent (its URL) that made a remote measurement; NULL: measured by this host
    ("agent", "TEXT"),
)


# Added after the first stores were written: created on open when missing (the migration of an
# old store), and kept in a table of its own so the measurement table's schema is untouched.
_RESOURCE_SCHEMA = """
CREATE TABLE IF NOT EXISTS resource (
    arch TEXT PRIMARY KEY, idx INTEGER, memory_mb REAL, onnx_bytes INTEGER, weight_bytes INTEGER,
    error TEXT, measured_at TEXT NOT NULL
);
"""


class StoreError(HwnasError):
    """The store cannot be opened or written (permissions, full disk, other settings)."""


class LockedError(StoreError):
    """Another process is profiling into the same folder."""


class ProfileLock:
    """An exclusive lock on a profile folder (``flock`` on ``DIR/.profile.lock``), so that two
    profilers never share one machine's time and one store: the second is refused at once.

    The lock is the kernel's: it goes with the process, so a killed profiler leaves no stale lock
    (the empty lock file stays, harmlessly).

    Raises:
        LockedError: another process holds the lock.
        StoreError: the folder cannot be created.
    """

    FILENAME = ".profile.lock"

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self.path = self.directory / self.FILENAME
        self._fd: int | None = None

    def __enter__(self) -> ProfileLock:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as e:
            raise StoreError(f"cannot open the profile store in {self.directory}: "
                             f"{e.strerror or e}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise LockedError(f"another hwnas profile is writing to {self.directory} (lock "
                                  f"{self.path}); wait for it to finish or choose another "
                                  "--out") from None
            raise StoreError(f"cannot lock {self.path}: {e.strerror or e}") from None
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing releases the lock
            self._fd = None


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds")


class ProfileStore:
    """Measurements of one device profile, in ``DIR/profile.sqlite``."""

    FILENAME = "profile.sqlite"

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self.path = self.directory / self.FILENAME
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._con = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            self._con.execute("PRAGMA journal_mode=WAL")
            # NORMAL is durable against a killed process in WAL mode (not against power loss)
            self._con.execute("PRAGMA synchronous=NORMAL")
            self._con.executescript(_SCHEMA)
            self._migrate()
            self._con.executescript(_RESOURCE_SCHEMA)
        except (OSError, sqlite3.Error) as e:
            raise StoreError(f"cannot open the profile store in {self.directory}: {e}") from None

    def _migrate(self) -> None:
        have = {r[1] for r in self._con.execute("PRAGMA table_info(measurement)")}
        for name, kind in _ADDED_COLUMNS:
            if name not in have:
                self._con.execute(f"ALTER TABLE measurement ADD COLUMN {name} {kind}")

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> ProfileStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self, sql: str, params: tuple) -> None:
        try:
            with self._con:  # one transaction: committed whole or not at all
                self._con.execute("BEGIN IMMEDIATE")
                self._con.execute(sql, params)
        except sqlite3.Error as e:
            raise StoreError(f"cannot write to {self.path}: {e} (the store is unchanged)") from None

    # ------------------------------------------------------------------ settings
    def bind_settings(self, settings: dict[str, Any]) -> None:
        """Record the settings of this profile, or check they match those already recorded.

        Raises:
            StoreError: the directory holds a profile made with other settings.
        """
        stored = dict(self._con.execute("SELECT key, value FROM settings"))
        if not stored:
            for k, v in settings.items():
                self._write("INSERT INTO settings VALUES (?, ?)",
                            (k, json.dumps(v, sort_keys=True)))
            return
        diff: list[str] = []
        for k, v in settings.items():
            if k in stored:
                diff += _differences(k, json.loads(stored[k]), json.loads(json.dumps(v)))
        if diff:
            raise StoreError(
                f"{self.directory} holds a profile made with other settings ({'; '.join(diff)}); "
                "resume it with the same options or choose another --out")

    def settings(self) -> dict[str, Any]:
        return {k: json.loads(v) for k, v in self._con.execute("SELECT key, value FROM settings")}

    # ------------------------------------------------------------------ measurements
    def done(self, round_: int) -> set[str]:
        """Architectures (canonical strings) already recorded in a round, measured or failed."""
        return {r[0] for r in self._con.execute(
            "SELECT arch FROM measurement WHERE round = ?", (round_,))}

    def add(self, arch: str, index: int | None, round_: int, m: Measurement,
            seconds: float, agent: str | None = None) -> None:
        """Record a successful measurement (its statistics must be finite and positive).

        Args:
            agent: the agent that measured it (remote profiles); ``None``: this host.
        """
        values = (m.median_ms, m.p10_ms, m.p90_ms, m.iqr_ms, m.cv,
                  *((m.reference_ms, m.ratio) if m.ratio is not None else ()))
        if not all(math.isfinite(v) for v in values) or m.median_ms <= 0:
            self.add_failure(arch, index, round_, f"non-finite or non-positive latency {values}",
                             seconds, agent)
            return
        samples = json.dumps([round(float(s), 6) for s in m.samples_ms])
        # columns named: a migrated store has the added columns last, a new one too
        self._write(
            "INSERT OR IGNORE INTO measurement (arch, idx, round, status, median_ms, p10_ms, "
            "p90_ms, iqr_ms, cv, n, ci_rel, converged, samples, error, measured_at, seconds, "
            "ref_ms, ratio, agent) "
            "VALUES (?, ?, ?, 'ok', ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?)",
            (arch, index, round_, m.median_ms, m.p10_ms, m.p90_ms, m.iqr_ms, m.cv, m.n,
             m.ci_rel, int(m.converged), samples, _now(), seconds, m.reference_ms, m.ratio,
             agent),
        )

    def add_failure(self, arch: str, index: int | None, round_: int, error: str,
                    seconds: float, agent: str | None = None) -> None:
        self._write(
            "INSERT OR IGNORE INTO measurement (arch, idx, round, status, error, measured_at, "
            "seconds, agent) VALUES (?, ?, ?, 'failed', ?, ?, ?, ?)",
            (arch, index, round_, error[:2000], _now(), seconds, agent),
        )

    def add_reference(self, round_: int, position: int, median_ms: float) -> None:
        if math.isfinite(median_ms) and median_ms > 0:
            self._write("INSERT INTO reference (round, position, median_ms, measured_at) "
                        "VALUES (?, ?, ?, ?)", (round_, position, median_ms, _now()))

    def measurements(self) -> pd.DataFrame:
        """Every recorded measurement (without raw samples)."""
        return pd.read_sql_query(
            "SELECT arch, idx, round, status, median_ms, p10_ms, p90_ms, iqr_ms, cv, n, ci_rel, "
            "converged, error, measured_at, seconds, ref_ms, ratio, agent FROM measurement "
            "ORDER BY measured_at",
            self._con)

    def references(self) -> pd.DataFrame:
        return pd.read_sql_query("SELECT * FROM reference ORDER BY seq", self._con)

    # ------------------------------------------------------------------ resources
    def add_resources(self, arch: str, index: int | None, memory_mb: float | None,
                      onnx_bytes: int | None, weight_bytes: int | None,
                      error: str | None = None) -> None:
        """Record an architecture's memory and sizes, once (a second record is ignored)."""
        self._write("INSERT OR IGNORE INTO resource VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (arch, index, memory_mb, onnx_bytes, weight_bytes,
                     None if error is None else error[:2000], _now()))

    def resources(self) -> pd.DataFrame:
        """Every recorded architecture's ``memory_mb``, ``onnx_bytes``, ``weight_bytes``."""
        return pd.read_sql_query("SELECT * FROM resource", self._con)


def _differences(key: str, old: Any, new: Any) -> list[str]:
    """``key.sub: old -> new`` for each setting that differs (nested dicts named by their path,
    so that a batch size that differs is named, not the whole runtime)."""
    if old == new:
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        return [d for k in sorted(set(old) | set(new), key=str)
                for d in _differences(f"{key}.{k}", old.get(k), new.get(k))]
    return [f"{key}: {json.dumps(old)} stored, {json.dumps(new)} now"]
