"""Pictures handed to the browser as complete files: written under a temporary name, then renamed into place.

Gradio saves a PIL image it is given under a name made from its bytes and rewrites
that file in place each time the same picture is returned again (two visitors running
one example, a colourbar that did not change, a gallery growing); a browser or client
fetching it meanwhile gets a truncated file. A path given here is only ever the path of
a finished file of one answer, which Gradio then copies atomically.
"""
from __future__ import annotations

import itertools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from PIL import Image

from ..whole_files import write_file

_numbers = itertools.count()


def publish(image: Image.Image, folder: Path, stem: str = "picture") -> str:
    """``image`` saved in ``folder`` as ``<stem>-<n>.webp``, complete before its name exists; the path."""
    path = folder / f"{stem}-{next(_numbers)}.webp"
    return str(write_file(path, lambda file: image.save(file, format="WEBP", quality=90, method=2)))


def published(value: Any, folder: Path, stem: str = "picture") -> Any:
    """``value`` with every PIL image in it replaced by its published path: alone, in a gallery's (image, caption)
    pairs, or in a callback's outputs (a mapping; an output named by a string gives its files that name)."""
    if isinstance(value, Image.Image):
        return publish(value, folder, stem)
    if isinstance(value, Mapping):
        return {key: published(item, folder, key if isinstance(key, str) else stem) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(published(item, folder, stem) for item in value)
    return value
