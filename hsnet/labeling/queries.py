"""The photos to label: files, folders (recursive) and globs, each found once, never inside an output folder.

A query's ``name`` is its path relative to the folder or glob it came from; the names
only ever go down from there (a glob whose matches climb out with ``..`` gives the
bare file name), so that an output built from a name cannot leave the output folder.
Folders that an earlier ``hsnet label`` wrote are left out: their masks are no photos.
"""
from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path, PurePosixPath

from PIL import Image

from ..errors import InputError, describe, one_line
from .layout import is_label_output

# Files a folder or glob contributes: those whose suffix Pillow can open (files named one by one are always taken).
IMAGE_SUFFIXES = frozenset(ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN)


@dataclass(frozen=True)
class Query:
    """One file to label and its name relative to the folder or glob it was found in."""

    path: Path
    name: PurePosixPath


@dataclass
class Found:
    """The queries ``find_queries`` found, and the earlier output folders it left out."""

    queries: list[Query]
    left_out: list[Path] = field(default_factory=list)


def real_path(path: str | os.PathLike) -> Path:
    """``path`` with every link followed, without raising for a symlink loop (that file fails when read)."""
    return Path(os.path.realpath(path))


def is_image_name(name: str) -> bool:
    """Whether a file called ``name`` is taken from a folder or glob: not hidden, a suffix Pillow opens."""
    return not name.startswith(".") and PurePosixPath(name).suffix.lower() in IMAGE_SUFFIXES


def safe_name(parts: Sequence[str]) -> PurePosixPath | None:
    """``parts`` as a relative name that stays below its folder, or None when a part climbs or is empty."""
    if not parts or any(p in ("", ".", "..") or "/" in p or "\0" in p for p in parts):
        return None
    return PurePosixPath(*parts)


class _Finder:
    def __init__(self, out: Path | None):
        self.out = real_path(out) if out is not None else None
        self.left_out: list[Path] = []

    @lru_cache(maxsize=None)
    def is_output(self, folder: Path) -> bool:
        """Whether ``folder`` is the output folder or one an earlier run wrote (noted once)."""
        if (self.out is not None and real_path(folder) == self.out) or is_label_output(folder):
            self.left_out.append(folder)
            return True
        return False

    def inside_output(self, path: Path, base: Path) -> bool:
        """Whether a folder between ``base`` and ``path`` (base included) is an output folder."""
        folder = path.parent
        while True:
            if self.is_output(folder):
                return True
            if folder == base or folder == folder.parent:
                return False
            folder = folder.parent

    def folder_images(self, folder: Path) -> list[Path]:
        """Image files under ``folder`` (recursive, sorted), without hidden ones and without output folders."""
        if self.is_output(folder):
            return []
        found = []
        for root, dirs, files in os.walk(folder):
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not self.is_output(Path(root, d)))
            found += [Path(root, f) for f in sorted(files) if is_image_name(f)]
        return found

    def expand(self, source: str) -> list[Query]:
        try:
            return self._expand(source)
        except OSError as exc:  # a name too long, a folder that may not be listed, ...
            raise InputError(f"query {one_line(source, 60)} cannot be read ({describe(exc)}); check the path") from None

    def _expand(self, source: str) -> list[Query]:
        path = Path(source)
        if glob.has_magic(source) and not path.exists():
            parts = path.parts
            base = Path(*parts[: next(i for i, p in enumerate(parts) if glob.has_magic(p))] or ["."])
            files = []
            for match in map(Path, sorted(glob.glob(source, recursive=True))):
                if match.is_dir():
                    files += self.folder_images(match)
                elif is_image_name(match.name) and not self.inside_output(match, base):
                    files.append(match)
            if not files:
                raise InputError(f"query pattern {one_line(source)} matches no image file outside an output folder")
            return [Query(f, self.name_below(f, base)) for f in files]
        if path.is_dir():
            files = self.folder_images(path)
            if not files:
                raise InputError(f"query folder {one_line(source)} holds no image files outside an output folder")
            return [Query(f, self.name_below(f, path)) for f in files]
        if path.exists() or path.is_symlink():
            return [Query(path, PurePosixPath(path.name))]
        raise InputError(f"query {one_line(source)} does not exist; give image files, folders or glob patterns")

    @staticmethod
    def name_below(file: Path, base: Path) -> PurePosixPath:
        """``file``'s path below ``base`` as written, or its bare name when that path climbs (``..``)."""
        try:
            relative = file.relative_to(base).parts
        except ValueError:
            relative = ()
        return safe_name(relative) or PurePosixPath(file.name)


def find_queries(sources: Sequence[str], out: Path | None = None) -> Found:
    """The image files named by ``sources`` (files, folders searched recursively, globs), each file once.

    Files inside ``out`` and inside folders an earlier ``hsnet label`` wrote are left out.
    """
    finder = _Finder(out)
    written = Path(os.path.abspath(out)) if out is not None else None
    queries: dict[Path, Query] = {}
    for source in sources:
        for query in finder.expand(source):
            resolved = real_path(query.path)
            if finder.out is None or not (resolved.is_relative_to(finder.out)
                                          or Path(os.path.abspath(query.path)).is_relative_to(written)):
                queries.setdefault(resolved, query)
    if not queries:
        raise InputError(f"no query images in {one_line(' '.join(sources), 80)} outside the output folder")
    return Found(list(queries.values()), sorted(set(finder.left_out)))
