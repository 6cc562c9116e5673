"""Writing a file so that readers see all of it or nothing: the one helper for that.

Results, markers, records and queue files are read by other processes (a driver polling a
job, an allocation claiming a chunk, a rerun deciding what is done) while they are written;
a reader must never see half a file, and a writer killed midway must leave the old file.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

__all__ = ["write_atomic"]


def write_atomic(path: str | os.PathLike, data: bytes | str, durable: bool = True) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory and a rename.

    Parameters
    ----------
    path : path-like
        The file; its directory must exist.
    data : bytes or str
        The whole new content (str is written as UTF-8).
    durable : bool
        fsync before the rename, so the content survives a power cut once the name is there
        (False for files that only matter while this machine is up, e.g. local queue state).
    """
    path = Path(path)
    # unique per process and thread: two writers of one file never share a temporary
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    payload = data.encode() if isinstance(data, str) else data
    try:
        with open(tmp, "wb") as fh:
            fh.write(payload)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
