"""Argument types the commands share: each checks one kind of value before any work starts.

argparse turns the ``ArgumentTypeError`` they raise into hsnet's one-line error
(``hsnet predict: error: argument --lr: ...``, exit status 2). Output paths are
checked here without touching the disk; ``prepare_folder`` and ``probe_file`` then
try the real write at the start of a run, before hours of episodes depend on it.
"""
from __future__ import annotations

import argparse
import functools
import math
import os
from pathlib import Path
from typing import Callable, TypeVar

import torch

from ..errors import InputError, describe, one_line
from ..limits import MIN_IMAGE_SIDE, check_image_size

T = TypeVar("T")
NAME_MAX = 255  # bytes in one file or folder name on common file systems
MAX_SEED = 2**32 - 1  # numpy.random.RandomState's range


def argument_type(parse: Callable[[str], T]) -> Callable[[str], T]:
    """``parse`` as an argparse type: its InputError becomes argparse's one-line error about the option."""

    @functools.wraps(parse)
    def wrapped(text: str) -> T:
        try:
            return parse(text)
        except InputError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return wrapped


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise InputError(f"{one_line(text, 40)!r} is not a whole number") from None


def _at_least(text: str, low: int, high: int | None = None) -> int:
    value = _integer(text)
    if value < low or (high is not None and value > high):
        limits = f"at least {low}" if high is None else f"from {low} to {high}"
        raise InputError(f"{value} is out of range; give a whole number {limits}")
    return value


@argument_type
def positive_int(text: str) -> int:
    """A whole number of at least 1 (episodes, epochs, batch sizes)."""
    return _at_least(text, 1)


@argument_type
def non_negative_int(text: str) -> int:
    """A whole number of at least 0 (data loading processes)."""
    return _at_least(text, 0)


@argument_type
def seed(text: str) -> int:
    """A random seed numpy accepts: 0 to 2**32 - 1."""
    return _at_least(text, 0, MAX_SEED)


@argument_type
def shots(text: str) -> int:
    """Support images per query: 1 to the Predictor's MAX_SHOTS."""
    from ..predictor import MAX_SHOTS

    return _at_least(text, 1, MAX_SHOTS)


@argument_type
def positive_float(text: str) -> float:
    """A finite number above 0 (learning rates)."""
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"{one_line(text, 40)!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise InputError(f"{value} is not a finite number above 0")
    return value


@argument_type
def image_side(text: str) -> int:
    """A square input side for evaluation and training: at least ``hsnet.limits.MIN_IMAGE_SIDE``, no cap."""
    side = _integer(text)
    if side < MIN_IMAGE_SIDE:
        raise InputError(f"image size {side} is below {MIN_IMAGE_SIDE}, too small for the backbone; "
                         f"use {MIN_IMAGE_SIDE} or more (the authors use 400)")
    return side


@argument_type
def predictor_side(text: str) -> int:
    """A square input side the Predictor accepts (``hsnet.limits.check_image_size``)."""
    return check_image_size(_integer(text))


@argument_type
def device(text: str) -> torch.device:
    """The device ``text`` names on this machine (``auto``: CUDA when available), resolved once here and passed down;
    under torchrun a bare ``cuda`` later becomes each rank's own GPU (``hsnet.distributed``)."""
    from ..runtime import resolve_device

    return resolve_device(text)


@argument_type
def non_empty(text: str) -> str:
    """Text that is not blank (names)."""
    if not text.strip():
        raise InputError("is empty; give a name")
    return text.strip()


@argument_type
def weights_source(text: str) -> str:
    """A registry name, Hub repo id or local path: not blank, no name longer than a file system allows."""
    if not text.strip():
        raise InputError("is empty; give a registry name (see `hsnet weights`), a Hub repo id or a file")
    _check_name_lengths(Path(text))
    return text


@argument_type
def local_path(text: str) -> str:
    """A path whose names fit a file system; whether it exists is checked where it is read, with that reader's advice."""
    _check_name_lengths(Path(text))
    return text


def _check_name_lengths(path: Path) -> None:
    for part in path.parts:
        if len(os.fsencode(part)) > NAME_MAX:
            raise InputError(f"{one_line(part, 40)} is {len(os.fsencode(part))} bytes long; file and folder names "
                             f"have at most {NAME_MAX}")


def _check_output(text: str, folder: bool) -> Path:
    kind = "folder" if folder else "file"
    if not text.strip():
        raise InputError(f"is empty; give a {kind} name" + (" such as results/" if folder else " such as results.json"))
    path = Path(text)
    _check_name_lengths(path)
    if path.is_dir() and not folder:
        raise InputError(f"{path} is a folder; give a file name such as {path / 'results.json'}")
    if path.exists() and not path.is_dir() and folder:
        raise InputError(f"{path} is a file; give a folder (existing or new)")
    target = path.absolute() if folder else path.absolute().parent  # a file that exists is replaced: check its folder
    existing = next(p for p in (target, *target.parents) if p.exists())
    if not existing.is_dir():
        raise InputError(f"{path} cannot be made: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"{path} cannot be written: no permission to write in {existing}")
    return path


@argument_type
def output_folder(text: str) -> Path:
    """A folder to write into: existing, or one that can be made."""
    return _check_output(text, folder=True)


@argument_type
def output_file(text: str) -> Path:
    """A file to write: not a folder, in a folder that exists or can be made."""
    return _check_output(text, folder=False)


def check_device_and_precision(device: torch.device, precision: str | None) -> str:
    """The precision to run on ``device`` (None: the device's default), refused here when the device cannot run
    it (fp16 on the CPU), before weights or datasets are fetched."""
    from ..runtime import resolve_precision

    return resolve_precision(device, precision)


def prepare_folder(path: Path, option: str) -> Path:
    """Make the output folder now, so that a run fails before its work rather than after it."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{option} {path} cannot be made ({describe(exc)}); choose a writable folder") from None
    return path


def probe_file(path: Path, option: str) -> Path:
    """Check ``path`` can be written now (making its folder), leaving no trace when it did not exist."""
    try:
        _check_output(str(path), folder=False)
    except InputError as exc:
        raise InputError(f"{option} {exc}") from None
    existed = path.exists()
    prepare_folder(path.parent, option)
    try:
        with open(path, "a", encoding="utf-8"):
            pass
        if not existed:
            path.unlink()
    except OSError as exc:
        raise InputError(f"{option} {path} cannot be written ({describe(exc)}); choose a writable file") from None
    return path
