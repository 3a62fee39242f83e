"""Hostile files built byte by byte, for the input-robustness tests (Pillow refuses to write them)."""
from __future__ import annotations

import re
import struct
import zlib


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk with its length and CRC."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` RGB pixels: a decompression bomb's header."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header)
            + png_chunk(b"IDAT", zlib.compress(b"\0" * 64)) + png_chunk(b"IEND", b""))


def icon_hiding(inner: bytes) -> bytes:
    """An ICO whose directory announces one 16x16 icon but whose image data is ``inner`` (any PNG)."""
    directory = struct.pack("<HHH", 0, 1, 1) + struct.pack("<BBBBHHII", 16, 16, 0, 0, 1, 32, len(inner), 22)
    return directory + inner


def torch_zip_declaring(path, storage_elements: int) -> None:
    """Rewrite a ``torch.save`` zip of ``{"hpn_learner.w": torch.zeros(5)}`` so that its pickle declares
    ``storage_elements`` floats for that tensor's storage while the archive stays a few hundred bytes."""
    import zipfile

    with zipfile.ZipFile(path) as archive:
        records = {info.filename: archive.read(info) for info in archive.infolist()}
    pickle_name = next(name for name in records if name.endswith("/data.pkl"))
    # The persistent id ('storage', FloatStorage, '0', 'cpu', 5) ends with "cpu", a memo op, then BININT1 5.
    declared = re.sub(rb"(X\x03\x00\x00\x00cpu(?:q.|\x94))K\x05",
                      lambda m: m.group(1) + b"J" + struct.pack("<i", storage_elements), records[pickle_name], count=1)
    assert declared != records[pickle_name], "the storage record was not found in the pickle"
    records[pickle_name] = declared
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for name, data in records.items():
            archive.writestr(name, data)
