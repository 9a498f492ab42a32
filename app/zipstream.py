"""A zip archive written as a stream: each member's bytes are handed out as soon as it is added,
and only its name, CRC, size and offset are kept (for the central directory at the end).

Members are stored, not deflated (PNGs are compressed already), and their sizes and CRCs go in
the local headers, so any unzip tool, streaming readers included, reads the archive. No ZIP64:
at most 65,535 members and 4 GiB, which GET /faces.zip stays far below.
"""
from __future__ import annotations

import struct
import zlib

_LOCAL = struct.Struct("<IHHHHHIIIHH")
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_END = struct.Struct("<IHHHHIIH")
_VERSION = 20  # 2.0: the oldest version that knows folders and stored members
_DOS_DATE = (1 << 5) | 1  # 1980-01-01, 00:00: fixed, so the same faces give the same bytes
_MAX_MEMBERS = 0xFFFF
_MAX_OFFSET = 0xFFFFFFFF
_FILE_MODE = 0o100644 << 16  # a regular file, rw-r--r--, in the external attributes


class ZipWriter:
    def __init__(self) -> None:
        self._offset = 0
        self._central: list[bytes] = []

    def add(self, name: str, data: bytes) -> bytes:
        """The bytes that put member `name` with content `data` into the archive."""
        raw = name.encode("ascii")
        if len(self._central) >= _MAX_MEMBERS or self._offset + len(data) + 30 + len(raw) > _MAX_OFFSET:
            raise ValueError("a zip without ZIP64 holds at most 65535 members and 4 GiB")
        crc, size = zlib.crc32(data), len(data)
        header = _LOCAL.pack(0x04034B50, _VERSION, 0, 0, 0, _DOS_DATE, crc, size, size, len(raw), 0)
        self._central.append(_CENTRAL.pack(0x02014B50, (3 << 8) | _VERSION, _VERSION, 0, 0, 0, _DOS_DATE,
                                           crc, size, size, len(raw), 0, 0, 0, 0, _FILE_MODE, self._offset) + raw)
        self._offset += len(header) + len(raw) + size
        return header + raw + data

    def finish(self) -> bytes:
        """The central directory and end record: the archive's last bytes."""
        directory = b"".join(self._central)
        end = _END.pack(0x06054B50, 0, 0, len(self._central), len(self._central), len(directory),
                        self._offset, 0)
        return directory + end
