"""A plain, checked file format for meta-learned state: named arrays in a NumPy ``.npz`` archive.

Nothing here unpickles. A cache file under ``$HWNAS_CACHE`` has a predictable name, so anyone who
can write there could plant one; ``torch.load(weights_only=False)`` (or ``np.load`` with
``allow_pickle=True``) would run the code inside it. This module reads an archive member by member
with :mod:`zipfile` and the public ``.npy`` header readers of :mod:`numpy.lib.format`, and accepts
a member only when its name, dtype and shape are the ones the caller expects, before a single data
byte is read (so a forged header cannot make it allocate, and an object array is never built).
Non-array facts travel as one JSON document stored as a ``uint8`` member.

Writes are atomic: the archive is built in memory, written to a temporary file in the target
folder and renamed into place, so a reader never sees half a file.
"""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib import format as npy_format

from .errors import MetaError

__all__ = ["CacheError", "META_MEMBER", "read_state", "write_state"]

#: the member holding the JSON document
META_MEMBER = "__meta__"
#: largest JSON document accepted (it holds a configuration, not data)
MAX_META_BYTES = 1 << 16
#: allowed dtypes of the data members (little-endian floats: what :func:`write_state` writes)
_DTYPES = (np.dtype("<f4"), np.dtype("<f8"))


class CacheError(MetaError):
    """A state file that is missing, unreadable, corrupt, or written for another predictor.

    Callers that use the file as a cache treat it as absent: they rebuild and overwrite it.
    """


def write_state(path: str | os.PathLike[str], arrays: Mapping[str, np.ndarray],
                meta: Mapping[str, Any]) -> Path:
    """Write ``arrays`` (float32/float64) and the JSON-able ``meta`` to ``path`` atomically.

    Raises:
        MetaError: a name that is reserved, or an array of another dtype.
        OSError: the folder cannot be created or written.
    """
    path = Path(path)
    if META_MEMBER in arrays:
        raise MetaError(f"array name {META_MEMBER!r} is reserved for the JSON document")
    plain: dict[str, np.ndarray] = {}
    for name, a in arrays.items():
        a = np.ascontiguousarray(a)
        if a.dtype.newbyteorder("<") not in _DTYPES:
            raise MetaError(f"array {name!r}: only float32/float64 are stored, got {a.dtype}")
        plain[name] = a.astype(a.dtype.newbyteorder("<"), copy=False)
    doc = json.dumps(dict(meta), sort_keys=True, allow_nan=False).encode()
    plain[META_MEMBER] = np.frombuffer(doc, dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, allow_pickle=False, **plain)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(buf.getvalue())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def read_state(path: str | os.PathLike[str],
               expected: Mapping[str, tuple[np.dtype, tuple[int, ...]]]
               ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read a file of :func:`write_state`, checking it against ``expected``.

    Args:
        path: the archive.
        expected: every data member's dtype and shape; the archive must hold exactly these
            members (and the JSON document), no more and no fewer.

    Returns:
        ``(arrays, meta)``: the arrays (finite values only) and the JSON document (an object).

    Raises:
        CacheError: a missing or unreadable file, one that is not such an archive, members that
            differ from ``expected`` in name, dtype or shape, non-finite values, or a JSON
            document that is malformed or too large. The message says which.
    """
    path = Path(path)
    want = {f"{name}.npy": (np.dtype(dt), tuple(shape)) for name, (dt, shape) in expected.items()}
    meta_name = f"{META_MEMBER}.npy"
    try:
        with zipfile.ZipFile(path) as zf:
            infos = {i.filename: i for i in zf.infolist()}
            names = set(want) | {meta_name}
            extra, missing = sorted(set(infos) - names), sorted(names - set(infos))
            if extra or missing:
                odd = (extra or missing)[0]
                raise CacheError(f"{path}: not a saved predictor of this shape ({len(extra)} "
                                 f"unexpected and {len(missing)} missing members, e.g. {odd!r})")
            arrays = {name[:-4]: _read_member(zf, infos[name], *spec, path)
                      for name, spec in want.items()}
            raw = _read_member(zf, infos[meta_name], np.dtype("u1"), None, path)
    except CacheError:
        raise
    except FileNotFoundError:
        raise CacheError(f"{path}: not found") from None
    # zipfile and the header readers raise many types on a damaged or foreign file (BadZipFile,
    # ValueError, EOFError, OSError, struct.error, ...): every one means "not a usable entry"
    except Exception as e:  # noqa: BLE001
        raise CacheError(f"{path}: not a readable state archive ({type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else 'no detail'})") from None
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise CacheError(f"{path}: the JSON document is malformed") from None
    if not isinstance(meta, dict):
        raise CacheError(f"{path}: the JSON document is not an object")
    for name, a in arrays.items():
        if not np.isfinite(a).all():
            raise CacheError(f"{path}: array {name!r} holds non-finite values")
    return arrays, meta


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, dtype: np.dtype,
                 shape: tuple[int, ...] | None, path: Path) -> np.ndarray:
    """One ``.npy`` member, its header checked before any data is read.

    ``shape=None`` accepts any 1-D ``uint8`` member up to :data:`MAX_META_BYTES` (the JSON).
    """
    with zf.open(info) as f:
        version = npy_format.read_magic(f)
        if version == (1, 0):
            got_shape, fortran, got_dtype = npy_format.read_array_header_1_0(f)
        elif version == (2, 0):
            got_shape, fortran, got_dtype = npy_format.read_array_header_2_0(f)
        else:
            raise CacheError(f"{path}: {info.filename}: unsupported .npy version {version}")
        if got_dtype != dtype or fortran:
            raise CacheError(f"{path}: {info.filename}: dtype {got_dtype} (want {dtype})")
        if shape is None:
            if len(got_shape) != 1 or got_shape[0] > MAX_META_BYTES:
                raise CacheError(f"{path}: {info.filename}: shape {got_shape} (want at most "
                                 f"{MAX_META_BYTES} bytes)")
        elif tuple(got_shape) != shape:
            raise CacheError(f"{path}: {info.filename}: shape {tuple(got_shape)} (want {shape})")
        nbytes = math.prod(got_shape) * dtype.itemsize
        data = f.read(nbytes + 1)
    if len(data) != nbytes:
        raise CacheError(f"{path}: {info.filename}: {len(data)} data bytes (want {nbytes})")
    return np.frombuffer(data, dtype=dtype).reshape(got_shape).copy()
