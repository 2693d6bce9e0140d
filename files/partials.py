"""The bytes of unfinished uploads: one partial file each under UPLOAD_TEMP_DIR.

The partial file's size is the upload's offset, so a dropped connection keeps everything that
arrived; one writer at a time holds its lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from django.conf import settings

from core.errors import Conflict, NotFound
from files.models import Upload


def partial_path(upload: Upload) -> Path:
    return Path(settings.UPLOAD_TEMP_DIR) / f"{upload.pk}.part"


def current_offset(upload: Upload) -> int:
    if upload.is_complete:
        return upload.length
    try:
        return min(partial_path(upload).stat().st_size, upload.length)
    except FileNotFoundError:
        return 0


@contextlib.contextmanager
def exclusive_partial(upload: Upload) -> Iterator[IO[bytes]]:
    """The partial file, opened for appending under an exclusive lock (one writer at a time)."""
    path = partial_path(upload)
    try:
        fh = path.open("r+b")
    except FileNotFoundError:
        raise NotFound("That upload expired.", code="upload_expired")
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Conflict("Another request is writing this upload.", code="upload_locked")
        fh.seek(0, os.SEEK_END)
        yield fh
    finally:
        fh.close()
