"""Reading a file (or standard input) into text the way Python itself would decode it.

Everything that can go wrong with the bytes (too large, undecodable, a bad coding cookie, a
null byte) becomes one clear `FileError` line instead of a traceback, so one bad file never
stops a run over a whole tree.
"""

from __future__ import annotations

import codecs
import io
import os
import re
import sys
import tokenize
from dataclasses import dataclass
from typing import BinaryIO

from advisor.findings import FileError

MAX_SOURCE_BYTES = 5 * 1024 * 1024  # a .py file larger than this is generated, not written
MAX_NOTEBOOK_BYTES = 50 * 1024 * 1024  # notebooks carry outputs (images); their code is capped
STDIN = "-"
_MB = 1024 * 1024
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")
_ASCII = b"# -*- coding: x -*-\nimport torch\n"  # what a source encoding must read as ASCII


@dataclass
class RawSource:
    """The bytes of one file, read once (and hashed for the cache) before any decoding."""

    path: str  # the path as shown to the user
    data: bytes


def size_limit(path: str) -> int:
    return MAX_NOTEBOOK_BYTES if path.endswith(".ipynb") else MAX_SOURCE_BYTES


def too_large(path: str, size: int, limit: int) -> FileError:
    return FileError(
        path,
        f"file too large ({size / _MB:.1f} MB > {limit / _MB:.0f} MB), skipped",
    )


def read_bytes(path: str, display: str | None = None) -> RawSource | FileError:
    """The file's bytes, or an error; never reads more than the size limit allows."""
    display = display or path
    limit = size_limit(display)
    try:
        size = os.stat(path).st_size
        if size > limit:
            return too_large(display, size, limit)
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except IsADirectoryError:
        return FileError(display, "is a directory, not a file", is_finding=False)
    except FileNotFoundError:
        return FileError(display, "no such file or directory", is_finding=False)
    except OSError as error:
        return FileError(display, f"cannot read: {error.strerror or error}", is_finding=False)
    if len(data) > limit:  # grew while we looked, or a special file with no size
        return too_large(display, len(data), limit)
    return RawSource(display, data)


def read_stdin(display: str, stream: BinaryIO | None = None) -> RawSource | FileError:
    stream = stream if stream is not None else sys.stdin.buffer
    limit = size_limit(display)
    try:
        data = stream.read(limit + 1)
    except OSError as error:
        return FileError(display, f"cannot read standard input: {error}", is_finding=False)
    if len(data) > limit:
        return too_large(display, len(data), limit)
    return RawSource(display, data)


def split_lines(text: str) -> list[str]:
    """Lines with their endings, split where Python's tokenizer splits (not at form feeds)."""
    return _LINE.findall(text)


def _position_of(data: bytes, offset: int) -> tuple[int, int]:
    """1-based line and column (in bytes) of a byte offset."""
    line = data.count(b"\n", 0, offset) + 1
    column = offset - (data.rfind(b"\n", 0, offset) + 1) + 1
    return line, column


def _ascii_compatible(encoding: str) -> bool:
    try:
        return _ASCII.decode(encoding) == _ASCII.decode("ascii")
    except (UnicodeError, LookupError):
        return False


def decode_source(data: bytes, path: str) -> str | FileError:
    """Decode Python source as the interpreter does: BOM, then PEP 263 cookie, else UTF-8."""
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as error:  # "unknown encoding: latin-42", BOM plus another cookie
        message = error.msg
        if message.startswith("invalid or missing encoding"):  # line 1 or 2 is not UTF-8:
            encoding = "utf-8"  # the decoding below says where
        else:
            if data.startswith(codecs.BOM_UTF8) and message == "encoding problem: utf-8":
                message = "a UTF-8 BOM and a coding cookie that names another encoding"
            return FileError(path, f"cannot decode: {message}", line=error.lineno or None)
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as error:
        line, column = _position_of(data, error.start)
        byte = data[error.start : error.start + 1].hex()
        return FileError(
            path,
            f"cannot decode as {encoding}: invalid byte 0x{byte} (not a text file, or a "
            "missing `# -*- coding: ... -*-` line)",
            line=line,
            column=column,
        )
    except UnicodeError:  # a codec that fails its own way (punycode, idna)
        return FileError(path, f"cannot decode as {encoding}: not a codec for source files")
    except LookupError:
        return FileError(path, f"cannot decode: unknown encoding {encoding!r}")
    if not _ascii_compatible(encoding):  # utf-16, cp037: Python refuses them too
        return FileError(path, f"cannot decode: {encoding} is not ASCII-compatible")
    null = text.find("\x00")
    if null != -1:
        line = text.count("\n", 0, null) + 1
        column = null - (text.rfind("\n", 0, null) + 1) + 1
        return FileError(
            path, "source contains a null byte (a binary file?)", line=line, column=column
        )
    return text
