"""Text classification data: a headerless ``data.csv`` of ``label,text`` rows."""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tf_finetune.errors import DataError

CSV_NAME = "data.csv"
NAMES_FILE = "labels.json"  # optional, beside the CSV: {"0": "ham", "1": "spam"}
_INTEGER = re.compile(r"[+-]?[0-9]+")  # not int()'s "1_000" or non-ASCII digits
_OTHER_SEPARATOR = re.compile(r"[^\t;]{0,50}([\t;])")  # "1\ttext", "ham;text", "Label\tSMS"
WORD_CLASSES = 50  # at most this many different words in column 1 are taken for class names


@dataclass(frozen=True)
class TextRows:
    """The rows of one CSV file.

    Attributes:
        path: the file read.
        texts: column 2 of each row.
        labels: column 1 of each row, the integer label as written.
        lines: the line of the file each row starts on (a quoted line break spans lines).
    """

    path: Path
    texts: tuple[str, ...]
    labels: tuple[int, ...]
    lines: tuple[int, ...]


def find_csv(path: str | Path) -> Path:
    """The CSV file behind ``path``: the file itself, or ``data.csv`` (else the only .csv) in a folder.

    Raises:
        DataError: nothing usable there.
    """
    path = Path(path)
    if path.is_file():
        return path
    if path.exists() and not path.is_dir():
        raise DataError(
            f"text data {path} is not a regular file (a device or a pipe); pass a data.csv file or its folder"
        )
    if not path.is_dir():
        raise DataError(f"text data {path} does not exist; pass a data.csv file or its folder")
    candidates = csv_files(path)
    named = [p for p in candidates if p.name.lower() == CSV_NAME]
    if len(named) == 1:  # data.csv, DATA.CSV, Data.csv ...
        return named[0]
    if len(candidates) == 1:
        return candidates[0]
    found = ", ".join(p.name for p in candidates) or "no .csv file"
    raise DataError(f"text data folder {path} needs a {CSV_NAME} (found {found})")


def csv_files(folder: Path) -> list[Path]:
    """The ``.csv`` files in ``folder`` (any case of the suffix), sorted."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() == ".csv" and p.is_file())


def find_names_file(csv_path: Path) -> Path | None:
    """The class names file beside ``csv_path`` (``labels.json``, any case), or None.

    Raises:
        DataError: two of them (names differing in case), or one that is not a file.
    """
    found = sorted(p for p in csv_path.parent.iterdir() if p.name.lower() == NAMES_FILE)
    if len(found) > 1:
        raise DataError(
            f"{csv_path.parent} holds {len(found)} class names files "
            f"({', '.join(p.name for p in found)}); keep one {NAMES_FILE}"
        )
    if found and not found[0].is_file():
        raise DataError(
            f"{found[0]} is not a file; the class names of {csv_path.name} go in a JSON file {NAMES_FILE} beside it"
        )
    return found[0] if found else None


def parse_label(text: str) -> int | None:
    """The integer label ``text`` spells as column 1 of a data.csv may (spaces around allowed), or None."""
    return int(text) if _INTEGER.fullmatch(text.strip()) else None


def read_text_csv(path: str | Path) -> TextRows:
    """Read and check a ``label,text`` CSV: no header, integer labels, non-empty text.

    UTF-8 with or without a byte-order mark, ``\\n`` or ``\\r\\n`` line ends, and standard CSV
    quoting (commas, quotes and line breaks inside quoted text) are accepted.

    Args:
        path: the CSV file, or a folder holding ``data.csv``.

    Returns:
        The rows, in file order.

    Raises:
        DataError: naming the file and line of the first problem and what to do about it.
    """
    path = find_csv(path)
    raw = path.read_bytes()
    try:
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        start = exc.start + (len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0)
        line = raw[:start].count(b"\n") + 1
        utf16 = " (it looks like UTF-16)" if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) else ""
        raise DataError(
            f"{path} line {line}: not valid UTF-8 (byte 0x{raw[start]:02x}){utf16}; save the file as UTF-8"
        ) from None
    texts: list[str] = []
    labels: list[int] = []
    lines: list[int] = []
    try:
        for line, row in _rows(content):
            label, text = _check_row(path, line, row, content)
            labels.append(label)
            texts.append(text)
            lines.append(line)
    except _CsvError as error:
        if "field limit" in error.reason:
            raise DataError(
                f"{path} line {error.line}: a field is longer than the field limit of "
                f"{csv.field_size_limit()} characters; shorten that text, or close "
                "the quote it starts with if it is left open"
            ) from None
        raise DataError(
            f"{path} line {error.line}: malformed CSV ({error.reason}); close every quoted field "
            'and double any quote inside quoted text ("")'
        ) from None
    if not labels:
        raise DataError(f"{path} is empty; expected rows of label,text with no header")
    return TextRows(path, tuple(texts), tuple(labels), tuple(lines))


class _CsvError(Exception):
    """The csv module stopped on ``line`` for ``reason``."""

    def __init__(self, line: int, reason: str):
        super().__init__(line, reason)
        self.line, self.reason = line, reason


def _rows(content: str, **dialect: Any) -> Iterator[tuple[int, list[str]]]:
    """(line the row starts on, fields) of each non-blank row of ``content``; ``dialect``: the
    csv reader's (strict CSV when none is given).

    Raises:
        _CsvError: the csv module stopped (malformed quoting, a field over its size limit).
    """
    reader = csv.reader(io.StringIO(content, newline=""), **(dialect or {"strict": True}))
    line = 1
    try:
        for row in reader:
            start, line = line, reader.line_num + 1
            if row and (len(row) > 1 or row[0].strip()):  # else a blank line
                yield start, row
    except csv.Error as exc:
        raise _CsvError(line, str(exc)) from None


def _check_row(path: Path, line: int, row: list[str], content: str) -> tuple[int, str]:
    where = f"{path} line {line}"
    # One column, or a first column like "0\tHello" or "ham\tHello" (a tab-separated line whose
    # text has a comma): whatever column 1 holds, the separator is the first thing to fix.
    label = parse_label(row[0])
    other = _OTHER_SEPARATOR.match(row[0]) if len(row) == 1 or label is None else None
    if other:
        separated = list(_readable_rows(content, other.group(1)))
        if 2 * sum(len(fields) > 1 for _, fields in separated) >= len(separated):  # not a stray tab in one text
            name = "a tab" if other.group(1) == "\t" else "a semicolon"
            words = _label_words([(n, fields[0].strip()) for n, fields in separated])
            also = f"; column 1 also holds words, not integer labels: {words}" if words else ""
            raise DataError(
                f"{where} uses {name} between label and text; data.csv is comma-separated "
                f"(label,text): save the file as comma-separated CSV{also}"
            )
    if len(row) != 2:
        raise DataError(
            f"{where} has {len(row)} column(s); expected 2 (label,text). Put text that contains commas in double quotes"
        )
    text = row[1]
    if label is None:
        raise DataError(
            f"{where}: label {row[0].strip()!r} is not an integer; "
            + _why_not_integer(line, [(n, fields[0].strip()) for n, fields in _readable_rows(content)])
        )
    if not text.strip():
        raise DataError(f"{where}: the text (column 2) is empty; remove the row or add its text")
    return label, text


def _readable_rows(content: str, delimiter: str = ",") -> Iterator[tuple[int, list[str]]]:
    """The rows of ``content`` as far as they can be read, leniently (for diagnoses); quotes are
    text in a tab- or semicolon-separated file."""
    try:
        yield from _rows(
            content, delimiter=delimiter, quoting=csv.QUOTE_MINIMAL if delimiter == "," else csv.QUOTE_NONE
        )
    except _CsvError:
        return


def _why_not_integer(line: int, column: list[tuple[int, str]]) -> str:
    """What to do about a non-integer label on ``line``, having looked at column 1 of every row
    (``column``: (line, label as written)): words used as class names, a header row, or one
    bad label."""
    words = _label_words(column)
    if words:
        return f"column 1 holds words, not integer labels: {words}"
    rest = column[1:]
    header = (
        column[0][0] == line
        and not _is_number(column[0][1])
        and 2 * sum(parse_label(value) is None for _, value in rest) <= len(rest)
    )  # the rest: integers
    if header:
        return "this looks like a header row, and data.csv must have none: delete the first line"
    return "column 1 must be an integer class label"


def _label_words(column: list[tuple[int, str]]) -> str | None:
    """When column 1 holds words as class names (a small set of words repeated on many rows;
    a header on the first row aside), what to do about it; else None.

    ``column`` is (line, label as written) of every row.
    """
    header = column[:1] if column and sum(value == column[0][1] for _, value in column) == 1 else []
    body = column[len(header) :]
    words = Counter(value for _, value in body if not _is_number(value))
    rows = sum(words.values())
    if not words or len(words) > WORD_CLASSES or rows <= len(words) or 2 * rows < len(body):
        return None  # no words, too many to be classes, none repeated, or on a few rows only
    mapping = ", ".join(f"{word}={index}" for index, word in enumerate(sorted(words)))
    counts = ", ".join(f"{word} on {count} row{'s' if count > 1 else ''}" for word, count in sorted(words.items()))
    advice = f"{counts}; data.csv needs integer class labels: replace each word with a number, e.g. {mapping}"
    if header and not _is_number(header[0][1]):
        advice += f", and delete line {header[0][0]} ({header[0][1]!r}), which looks like a header row"
    names = json.dumps({str(index): word for index, word in enumerate(sorted(words))}, ensure_ascii=False)
    return advice + f"; to keep the words as class names, put {NAMES_FILE} beside data.csv: {names}"


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True
