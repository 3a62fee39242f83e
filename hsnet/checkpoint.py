"""Load the authors' checkpoints, plain state dicts and safetensors into an HSNet, safely.

Only tensors are ever deserialized: ``.pt`` files go through
``torch.load(weights_only=True)`` and ``.safetensors`` through safetensors. Before
either runs, the file's declared sizes are read from its headers (the zip directory
and the pickle's storage records, or the safetensors header), so a small file that
unpacks to gigabytes is refused before any tensor is materialised.
"""
from __future__ import annotations

import errno
import io
import os
import pickle
import stat
import warnings
import zipfile
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file

from .errors import CheckpointError, describe, one_line
from .model import HSNet
from .model.backbone import detect_backbone

# The ImageNet classifier head is in the authors' files but never used by HSNet.
UNUSED_PREFIXES = ("backbone.fc.", "backbone.classifier.")
# The largest authors' file, VGG-16 with its ImageNet classifier, holds about 0.56 GB of tensors.
MAX_CHECKPOINT_BYTES = 1 << 30
MAX_PICKLE_BYTES = 64 << 20  # the pickled structure alone (key names, shapes) of any HSNet checkpoint is < 1 MB
StateDict = Mapping[str, torch.Tensor]


def file_problem(path: Path) -> str | None:
    """Why ``path`` is not a readable regular file (missing, a loop, a dangling link, a folder, a device...);
    None when it is one."""
    try:
        info = path.stat()
    except OSError as exc:
        if exc.errno == errno.ENOENT and os.path.islink(path):
            return f"is a symbolic link to {one_line(os.readlink(path), 80)}, which does not exist"
        reasons = {
            errno.ENOENT: "does not exist",
            errno.ENOTDIR: "does not exist (a part of the path is not a folder)",
            errno.ELOOP: "is a loop of symbolic links",
            errno.ENAMETOOLONG: f"is too long a name for this system ({len(str(path))} characters)",
            errno.EACCES: "cannot be read (permission denied)",
        }
        return reasons.get(exc.errno, f"cannot be opened ({describe(exc)})")
    if stat.S_ISDIR(info.st_mode):
        return "is a folder"
    if not stat.S_ISREG(info.st_mode):
        return "is not a regular file (a device, pipe or socket)"
    return None


def check_weights_file(path: Path, where: str) -> None:
    """Raise a CheckpointError saying truly why ``path`` is not a readable regular file (missing, loop, device...)."""
    problem = file_problem(path)
    if problem is not None:
        raise CheckpointError(f"{where} {problem}; give the path of a best_model.pt or .safetensors file")


def present(path: Path, where: str) -> bool:
    """Whether a regular file is at ``path``: False when nothing is there at all, CheckpointError when something
    else is (a loop or dangling symbolic link, a folder, a device, a pipe), so it is never mistaken for absent."""
    try:
        os.lstat(path)
    except FileNotFoundError:
        return False
    except OSError:
        pass  # a loop or too long a name above it: file_problem names it
    problem = file_problem(path)
    if problem is not None:
        raise CheckpointError(f"{where} {problem}; replace it with the real file or remove it")
    return True


def _size(count: int) -> str:
    return f"{count / 1e9:.1f} GB" if count >= 1e9 else f"{count / 1e6:.0f} MB"


def _too_large(where: str, declared: int) -> CheckpointError:
    return CheckpointError(f"{where} declares {_size(declared)} of tensors, more than any HSNet checkpoint "
                           f"(at most {_size(MAX_CHECKPOINT_BYTES)}); refused before loading it: "
                           "use the authors' best_model.pt or a file hsnet saved")


class _Declared:
    """What the pickle of a ``torch.save`` zip says a tensor (or storage) is: its shape, without any of its bytes."""

    def __init__(self, shape: Any = ()):
        self.shape = tuple(shape) if isinstance(shape, (tuple, list)) else ()


def _declared_tensor(storage: Any = None, offset: Any = 0, shape: Any = (), *args: Any, **kwargs: Any) -> Any:
    """Stand-in for torch's tensor rebuilders: keeps the declared shape (a parameter's rebuilder passes the tensor)."""
    return storage if isinstance(storage, _Declared) and not shape else _Declared(shape)


class _StorageType:
    """A ``torch.<Dtype>Storage`` named in the pickle: only its element size matters here."""

    ITEMSIZES = {"Untyped": 1, "Byte": 1, "Char": 1, "Bool": 1, "QUInt8": 1, "QInt8": 1, "Short": 2, "Half": 2,
                 "BFloat16": 2, "Int": 4, "Float": 4, "QInt32": 4, "Long": 8, "Double": 8, "ComplexFloat": 8,
                 "ComplexDouble": 16}

    def __init__(self, name: str):
        self.itemsize = self.ITEMSIZES.get(name.removesuffix("Storage"), 16)  # unknown: the widest, never too small


class _StructureScanner(pickle.Unpickler):
    """Reads a state dict's key names and storage sizes from ``data.pkl``; builds no tensor and runs no code."""

    def __init__(self, data: bytes):
        super().__init__(io.BytesIO(data))
        self.storage_bytes: dict[str, int] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if module == "torch" and name.endswith("Storage"):
            return _StorageType(name)
        if module == "torch._utils" and name.startswith(("_rebuild_tensor", "_rebuild_parameter")):
            return _declared_tensor
        raise pickle.UnpicklingError(f"{module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        if isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and isinstance(pid[1], _StorageType):
            self.storage_bytes[str(pid[2])] = int(pid[4]) * pid[1].itemsize
            return _Declared()
        raise pickle.UnpicklingError("unknown persistent id")


def _check_zip_declarations(path: Path, where: str) -> None:
    """Refuse a ``torch.save`` zip whose records or pickled storages declare more bytes than any HSNet checkpoint."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError):
        return  # not a zip (legacy format or damage): torch.load names the problem; its size is the file's own
    with archive:
        records = archive.infolist()
        declared = sum(info.file_size for info in records)
        if declared > MAX_CHECKPOINT_BYTES:
            raise _too_large(where, declared)
        pickles = [info for info in records if info.filename.endswith("/data.pkl") or info.filename == "data.pkl"]
        if len(pickles) != 1 or pickles[0].file_size > MAX_PICKLE_BYTES:
            return  # torch.load refuses such archives itself
        scanner = _StructureScanner(archive.read(pickles[0]))
        try:
            structure = scanner.load()
        except Exception:  # noqa: BLE001 - anything else in the pickle is for torch.load(weights_only=True) to judge
            return
    storages = sum(scanner.storage_bytes.values())
    if storages > MAX_CHECKPOINT_BYTES:
        raise _too_large(where, storages)
    if isinstance(structure, Mapping) and structure and all(isinstance(k, str) for k in structure) \
            and all(isinstance(v, _Declared) for v in structure.values()):
        _check_key_names({key: value.shape for key, value in structure.items()}, where)


def _check_safetensors_declarations(path: Path, where: str) -> None:
    """Refuse a ``.safetensors`` file whose header declares too many bytes or keys of another model."""
    try:
        with safe_open(str(path), "pt") as f:
            shapes = {}
            declared = 0
            for key in f.keys():
                piece = f.get_slice(key)
                shapes[key] = tuple(piece.get_shape())
                count = 1
                for side in shapes[key]:
                    count *= side
                declared += count * _dtype_size(piece.get_dtype())
    except Exception:  # noqa: BLE001 - load_file below reports damage in its own words
        return
    if declared > MAX_CHECKPOINT_BYTES:
        raise _too_large(where, declared)
    if shapes:
        _check_key_names(shapes, where)


def _dtype_size(name: str) -> int:
    """Bytes per element of a safetensors dtype name (``F32``, ``BF16``, ``I64``, ``BOOL``...)."""
    digits = "".join(c for c in name if c.isdigit())
    return max(1, int(digits) // 8) if digits else 1


def _check_key_names(shapes: Mapping[str, tuple[int, ...]], where: str) -> None:
    """Refuse a state dict whose key names and shapes are not HSNet's before any of its tensors is read."""
    if infer_backbone(shapes) is None:
        raise CheckpointError(f"{where} is not an HSNet checkpoint (no backbone./hpn_learner. parameters of a known "
                              "backbone); give the authors' best_model.pt or a checkpoint hsnet saved")


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Tensors of a ``.safetensors`` or ``.pt``/``.pth`` file; never runs pickled code, never unpacks a bomb."""
    path = Path(path)
    where = f"checkpoint {one_line(str(path))}"
    check_weights_file(path, where)
    if path.stat().st_size > MAX_CHECKPOINT_BYTES:
        raise _too_large(where, path.stat().st_size)
    with path.open("rb") as f:
        if f.read(512).lstrip().lower().startswith((b"<!doctype html", b"<html")):
            raise CheckpointError(f"{where} is a web page, not a checkpoint (what a refused or redirected download "
                                  "gives); download the file again, in a browser if need be")
    try:
        if path.suffix == ".safetensors":
            _check_safetensors_declarations(path, where)
            return load_file(str(path))
        _check_zip_declarations(path, where)
        with warnings.catch_warnings():  # torch notes odd pickle protocols; refusing or loading says what matters
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except CheckpointError:
        raise
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{where} holds Python objects other than tensors and was refused without running them; "
            "use the authors' best_model.pt or a .safetensors file"
        ) from exc
    except MemoryError as exc:
        raise CheckpointError(f"{where} does not fit in memory; is it really an HSNet checkpoint?") from exc
    except Exception as exc:  # noqa: BLE001 - torch.load and safetensors raise many types on damaged bytes
        raise CheckpointError(f"{where} is damaged or not a PyTorch/safetensors file ({describe(exc)}); "
                              "download or save it again") from exc
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{where} holds a {type(state).__name__}, not a state dict of tensors; "
                              "save model.state_dict() instead")
    return dict(state)


def infer_backbone(state: Mapping[str, Any]) -> str | None:
    """The backbone of an HSNet state dict (tensors, or their shapes), from its parameter names and shapes;
    None when it is not HSNet's or matches no single known backbone."""
    if not any(k.removeprefix("module.").startswith("hpn_learner.") for k in state):
        return None
    return detect_backbone({k: tuple(getattr(v, "shape", v)) for k, v in state.items()})


def normalize_state_dict(state: StateDict) -> dict[str, torch.Tensor]:
    """Strip DataParallel's ``module.`` prefix and drop the unused classifier head."""
    out = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        if not key.startswith(UNUSED_PREFIXES):
            out[key] = value
    return out


def load_weights(model: HSNet, state_dict_or_path: StateDict | str | os.PathLike) -> HSNet:
    """Load an HSNet checkpoint strictly (``module.`` prefix or not); returns the model."""
    source = state_dict_or_path
    state = read_state_dict(source) if isinstance(source, (str, os.PathLike)) else source
    where = f"checkpoint {one_line(str(source))}" if isinstance(source, (str, os.PathLike)) else "state dict"
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{where} is a {type(state).__name__}, not a state dict; give model.state_dict() or a file")
    odd = [one_line(repr(k), 40) for k, v in state.items() if not (isinstance(k, str) and isinstance(v, torch.Tensor))]
    if odd:
        raise CheckpointError(f"{where} holds entries that are not named tensors ({', '.join(odd[:3])}"
                              f"{' ...' if len(odd) > 3 else ''}); save the model's state_dict() alone")
    if not state:
        raise CheckpointError(f"{where} is empty; give an HSNet checkpoint (the authors' best_model.pt or one hsnet saved)")
    found = infer_backbone(state)
    if found is None:
        raise CheckpointError(f"{where} is not an HSNet checkpoint (no backbone./hpn_learner. parameters of a known "
                              "backbone); give the authors' best_model.pt or a checkpoint hsnet saved")
    if found != model.backbone_name:
        raise CheckpointError(
            f"{where} is for backbone {found}, but the model is {model.backbone_name}; "
            f"build the model with backbone={found!r} or pick a {model.backbone_name} checkpoint"
        )
    state = normalize_state_dict(state)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if tuple(expected[k].shape) != tuple(state[k].shape))
    if missing or unexpected or wrong:
        parts = [f"{name}: {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
                 for name, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)) if keys]
        raise CheckpointError(f"{where} does not fit HSNet-{model.backbone_name} ({'; '.join(parts)})")
    model.load_state_dict(state, strict=True)
    return model
