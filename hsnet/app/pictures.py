"""Pictures handed to the browser as complete files: written under a temporary name, then renamed into place.

Gradio saves a PIL image it is given under a name made from its bytes and rewrites
that file each time the same picture is returned again (as a growing gallery does on
every update); a browser fetching it meanwhile gets a truncated file. A path given
here is only ever the path of a finished file, which Gradio then copies atomically.
"""
from __future__ import annotations

import itertools
import os
import tempfile
from pathlib import Path
from typing import Any

from PIL import Image

_numbers = itertools.count()


def publish(image: Image.Image, folder: Path, stem: str = "picture") -> str:
    """``image`` saved in ``folder`` as ``<stem>-<n>.webp``, complete before its name exists; the path."""
    path = folder / f"{stem}-{next(_numbers)}.webp"
    handle, partial = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(handle, "wb") as file:
            image.save(file, format="WEBP", quality=90, method=2)
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    return str(path)


def published(value: Any, folder: Path, stem: str = "picture") -> Any:
    """``value`` with every PIL image in it (alone, or in a gallery's (image, caption) pairs) replaced by its path."""
    if isinstance(value, Image.Image):
        return publish(value, folder, stem)
    if isinstance(value, list):
        return [(published(item, folder, stem), caption) if isinstance(item, Image.Image) else item
                for item, caption in value]
    return value
