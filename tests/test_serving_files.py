"""Visitor files: masks pruned after their lifetime, the per-process folder removed at exit, stale folders cleaned."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hsnet.serving import MaskFiles
from hsnet.serving.files import remove_stale_temp_dirs

ROOT = Path(__file__).resolve().parent.parent


def test_a_mask_file_is_a_0_255_png_under_a_safe_name(tmp_path: Path) -> None:
    masks = MaskFiles(tmp_path)
    mask = np.zeros((30, 40), bool)
    mask[5:10, 5:20] = True
    path = masks.save(mask, "../../etc/my photo")
    assert path.name == "etc_my_photo_mask.png" and path.parent.parent == masks.folder
    with Image.open(path) as saved:
        assert saved.size == (40, 30) and set(np.unique(np.asarray(saved))) == {0, 255}
    masks.remove()
    assert not masks.folder.exists()


def test_masks_older_than_their_lifetime_are_pruned_on_the_next_save(tmp_path: Path) -> None:
    masks = MaskFiles(tmp_path, lifetime_s=60)
    old = masks.save(np.ones((4, 4), bool), "old")
    past = time.time() - 120
    os.utime(old.parent, (past, past))
    new = masks.save(np.ones((4, 4), bool), "new")
    assert not old.exists() and new.exists()


SCRIPT = """
import os, signal, sys, tempfile
from pathlib import Path
import numpy as np
from hsnet.serving import MaskFiles, private_temp_dir
folder = private_temp_dir(sys.argv[1])
Path(tempfile.mkstemp()[1]).write_bytes(b"a visitor's upload")
MaskFiles().save(np.ones((4, 4), bool), "query")
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
print(folder, os.environ["GRADIO_TEMP_DIR"], flush=True)
sys.stdin.readline()  # until the test says to end, or a SIGTERM
"""


@pytest.mark.slow
@pytest.mark.parametrize("ending", ["exit", "sigterm"])
def test_the_process_folder_holds_everything_and_is_removed_at_exit(tmp_path: Path, ending: str) -> None:
    process = subprocess.Popen([sys.executable, "-c", SCRIPT, str(tmp_path)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    folder, gradio_dir = process.stdout.readline().split()
    assert Path(folder).parent == tmp_path and Path(gradio_dir).parent == Path(folder)
    assert len(list(Path(folder).rglob("*"))) >= 3  # the upload, the mask folder and its mask
    if ending == "sigterm":
        process.send_signal(signal.SIGTERM)
    else:
        process.stdin.write("end\n")
        process.stdin.flush()
    assert process.wait(30) == 0
    assert list(tmp_path.iterdir()) == []


def test_folders_of_dead_processes_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f"hsnet-app-{dead.stdout.strip()}-abc"
    alive = tmp_path / f"hsnet-app-{os.getpid()}-def"
    other = tmp_path / "someone-else"
    for folder in (stale, alive, other):
        (folder / "gradio").mkdir(parents=True)
    assert remove_stale_temp_dirs(tmp_path) == [stale]
    assert not stale.exists() and alive.exists() and other.exists()
