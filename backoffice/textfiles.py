"""Text files from outside (ledgers, products, statements), read line by line as UTF-8: a line that is
not UTF-8, holds NUL bytes or is too long becomes an error naming the file and the line, and the
numbering of the lines after it stays right. UTF-16 and UTF-32 files are refused whole; a UTF-8
byte-order mark is skipped (harmless)."""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from pathlib import Path
from typing import IO

SAVE_AS_UTF8 = "save the file as UTF-8"
FOREIGN_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16"),
)  # fmt: skip
LONE_CR = re.compile(rb"(?<=\r)(?!\n)")  # old Mac line ends, which Arrow's reader also splits on


MAX_ERRORS_SHOWN = 30


class FileProblems(Exception):
    """A file refused: ``errors`` names the file and line of each problem; its text shows the first
    MAX_ERRORS_SHOWN, a line each."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        shown = errors[:MAX_ERRORS_SHOWN]
        more = f"\n… and {len(errors) - len(shown)} more" if len(errors) > len(shown) else ""
        super().__init__("\n".join(shown) + more)


class TextFileError(Exception):
    """The file cannot be read as UTF-8 text at all; ``problems`` are one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def skip_bom(f: IO[bytes], path: Path) -> None:
    """Past a UTF-8 byte-order mark; TextFileError for a UTF-16 or UTF-32 one."""
    head = f.read(4)
    for bom, name in FOREIGN_BOMS:
        if head.startswith(bom):
            raise TextFileError([f"{path}: {name} text (it starts with a {name} byte-order mark); {SAVE_AS_UTF8}"])
    f.seek(len(codecs.BOM_UTF8) if head.startswith(codecs.BOM_UTF8) else 0)


def line_problem(raw: bytes) -> str | None:
    """Why one line of a text file cannot be read as UTF-8 text, or None."""
    if b"\x00" in raw:
        utf16 = raw.count(0) * 3 >= len(raw.rstrip(b"\r\n\x00"))  # every other byte: UTF-16 text
        return "holds NUL bytes" + (f"; UTF-16 text? {SAVE_AS_UTF8}" if utf16 else "")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as err:
        column = len(raw[: err.start].decode("utf-8", "replace")) + 1
        return f"not UTF-8 text (byte 0x{raw[err.start]:02x} at column {column}; Latin-1?); {SAVE_AS_UTF8}"
    return None


def text_lines(
    f: IO[bytes], path: Path, errors: list[str], max_line_bytes: int, taken: list[str] | None = None
) -> Iterator[str]:
    """The file's lines as text, for csv.reader (each also appended to ``taken`` when given: the raw
    text of the current record). A bad line becomes an error in ``errors`` naming it, and an empty
    line, so that the numbers of the lines after it stay right. A read error is a TextFileError."""
    number = 0
    while True:
        try:
            raw = f.readline(max_line_bytes + 1)
            if len(raw) > max_line_bytes and not raw.endswith(b"\n"):
                while raw and not raw.endswith(b"\n"):  # skip the rest of it, a bounded piece at a time
                    raw = f.readline(max_line_bytes)
                number += 1
                errors.append(f"{path} line {number}: longer than {max_line_bytes:,} bytes")
                yield "\n"
                continue
        except OSError as err:
            raise TextFileError([f"{path} line {number + 1}: read error ({err.strerror or err})"]) from None
        if not raw:
            return
        for piece in LONE_CR.split(raw) if b"\r" in raw[:-2] else (raw,):
            if not piece:
                continue
            number += 1
            problem = line_problem(piece)
            if problem:
                errors.append(f"{path} line {number}: {problem}")
                yield "\n"
            else:
                text = piece.decode("utf-8")
                if taken is not None:
                    taken.append(text)
                yield text
