"""Where the app writes visitors' files, and how long they live: nothing outlives its use or the process.

``private_temp_dir`` gives the process one folder for everything written on a
visitor's behalf (Gradio's upload and result cache through GRADIO_TEMP_DIR,
Python's temporary files, downloadable masks), removed at exit; folders left by
processes that were killed are removed at the next start. Within a run, Gradio's
``delete_cache=DELETE_CACHE`` sweeps its cache and ``MaskFiles`` prunes old masks.
"""
from __future__ import annotations

import atexit
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from ..visualize import mask_image

TEMP_PREFIX = "hsnet-app-"
DELETE_CACHE = (300, 1800)  # gr.Blocks(delete_cache=...): every 5 min, files older than the session state's 30 min
MASK_FILE_LIFETIME_S = 600  # Gradio serves its own copy of a returned file once the answer is sent


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_temp_dirs(parent: Path) -> list[Path]:
    """Remove this user's ``hsnet-app-<pid>-*`` folders under ``parent`` whose process is gone; the ones removed."""
    removed = []
    for folder in parent.glob(f"{TEMP_PREFIX}*-*"):
        pid = folder.name[len(TEMP_PREFIX):].split("-", 1)[0]
        try:
            mine = folder.is_dir() and folder.stat().st_uid == os.getuid()
        except OSError:
            continue
        if mine and pid.isdigit() and not _process_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def private_temp_dir(parent: str | os.PathLike | None = None) -> Path:
    """A folder of this process for all visitor files, made GRADIO_TEMP_DIR and tempfile's default; removed at exit.

    Call it before the gr.Blocks is built (Gradio reads GRADIO_TEMP_DIR when a component is made).
    """
    base = Path(parent or tempfile.gettempdir())
    remove_stale_temp_dirs(base)
    folder = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-", dir=base))
    os.environ["GRADIO_TEMP_DIR"] = str(folder / "gradio")
    tempfile.tempdir = str(folder)
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


class MaskFiles:
    """Downloadable masks (and label archives) in a folder of this process, each removed after ``lifetime_s``."""

    def __init__(self, parent: str | os.PathLike | None = None, lifetime_s: float = MASK_FILE_LIFETIME_S):
        self.folder = Path(tempfile.mkdtemp(prefix="hsnet-masks-", dir=parent))
        self.lifetime_s = lifetime_s
        atexit.register(self.remove)

    def answer_folder(self) -> Path:
        """A new folder for one answer's files (a folder per answer keeps readable names unique), after pruning."""
        self.prune()
        return Path(tempfile.mkdtemp(dir=self.folder))

    def save(self, mask: np.ndarray, stem: str) -> Path:
        """Write ``mask`` as ``<stem>_mask.png`` (0/255) in a folder of its own."""
        safe = re.sub(r"[^\w.-]+", "_", stem).strip("._")[:60] or "query"
        path = self.answer_folder() / f"{safe}_mask.png"
        mask_image(mask).save(path)
        return path

    def prune(self) -> None:
        """Remove the answers older than ``lifetime_s``."""
        cutoff = time.time() - self.lifetime_s
        for folder in self.folder.iterdir() if self.folder.is_dir() else ():
            try:
                old = folder.stat().st_mtime < cutoff
            except OSError:  # removed meanwhile by a concurrent answer
                continue
            if old:
                shutil.rmtree(folder, ignore_errors=True)

    def remove(self) -> None:
        """Remove the folder and every mask in it."""
        shutil.rmtree(self.folder, ignore_errors=True)
