"""Files written whole or not at all: each goes to a temporary name in its own folder, then is renamed.

A reader (a resumed run, a browser fetching a picture or thumbnail, a zip being served) therefore sees a
file only once it is complete, and a path is never opened for writing: renaming replaces the
folder entry, so a photo that an output name happens to point at is never written through.
Temporary names carry the process id and a random part, so concurrent writers never share one.
"""
from __future__ import annotations

import errno
import os
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from .errors import InputError, OutputError, describe


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name[:40]}.{os.getpid()}-{secrets.token_hex(4)}.partial")  # fits 255 bytes


def _failed(path: Path, exc: OSError) -> OutputError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        advice = "free some space (or choose another --out) and run again; what is done is kept"
    else:
        advice = "make the folder writable or choose another output folder"
    return OutputError(f"{path} cannot be written ({describe(exc)}); {advice}")


def _publish(path: Path, make: Callable[[Path], None]) -> Path:
    temporary = _temporary(path)
    try:
        make(temporary)
        os.replace(temporary, path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise _failed(path, exc) from None
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def write_file(path: Path, write: Callable[[BinaryIO], None]) -> Path:
    """Write ``path`` through ``write(file)`` under a temporary name, then rename it into place."""
    def make(temporary: Path) -> None:
        with open(temporary, "xb") as file:
            write(file)
    return _publish(path, make)


def copy_file(source: Path, path: Path) -> Path:
    """``path`` as a copy of ``source`` (only ``source``'s bytes are read)."""
    return _publish(path, lambda temporary: shutil.copyfile(source, temporary))


def link_file(source: Path, path: Path) -> Path:
    """``path`` as a hard link to ``source`` (no space used), or a copy where the file system refuses the link.

    Not a symbolic link: datumaro refuses an image whose real path leaves images/.
    """
    def make(temporary: Path) -> None:
        try:
            os.link(os.path.realpath(source), temporary)
        except OSError:  # another file system, links not supported, too many links
            shutil.copyfile(source, temporary)
    return _publish(path, make)


def folder_below(root: Path, relative: PurePosixPath) -> Path:
    """``root/relative``, made one folder at a time; a link on the way is refused before anything is made through it."""
    folder = root
    for part in relative.parts:
        folder = folder / part
        if folder.is_symlink():
            raise InputError(f"{folder} is a link, which could lead outside {root}; remove it or choose another --out")
        try:
            folder.mkdir(exist_ok=True)
        except OSError as exc:
            raise _failed(folder, exc) from None
    return folder
