"""Text classification data: a headerless ``data.csv`` of ``label,text`` rows."""
from __future__ import annotations

import codecs
import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

from tf_finetune.errors import DataError

CSV_NAME = "data.csv"
_INTEGER = re.compile(r"[+-]?[0-9]+")  # not int()'s "1_000" or non-ASCII digits
_OTHER_SEPARATOR = re.compile(r"\s*[+-]?[0-9]+[ ]*([\t;])")  # "1\ttext", "1;text"


@dataclass(frozen=True)
class TextRows:
    """The rows of one CSV file.

    Attributes:
        path: the file read.
        texts: column 2 of each row.
        labels: column 1 of each row, the integer label as written.
    """

    path: Path
    texts: tuple[str, ...]
    labels: tuple[int, ...]


def find_csv(path: str | Path) -> Path:
    """The CSV file behind ``path``: the file itself, or ``data.csv`` (else the only .csv) in a folder.

    Raises:
        DataError: nothing usable there.
    """
    path = Path(path)
    if path.is_file():
        return path
    if path.exists() and not path.is_dir():
        raise DataError(f"text data {path} is not a regular file (a device or a pipe); pass a data.csv "
                        "file or its folder")
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
        utf16 = (" (it looks like UTF-16)"
                 if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) else "")
        raise DataError(f"{path} line {line}: not valid UTF-8 (byte 0x{raw[start]:02x}){utf16}; "
                        "save the file as UTF-8") from None
    texts: list[str] = []
    labels: list[int] = []
    reader = csv.reader(io.StringIO(content, newline=""), strict=True)
    line = 1
    try:
        for row in reader:
            start, line = line, reader.line_num + 1
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # blank line
            label, text = _check_row(path, start, row, first=not labels)
            labels.append(label)
            texts.append(text)
    except csv.Error as exc:
        if "field limit" in str(exc):
            raise DataError(f"{path} line {line}: a field is longer than the field limit of "
                            f"{csv.field_size_limit()} characters; shorten that text, or close "
                            "the quote it starts with if it is left open") from None
        raise DataError(f"{path} line {line}: malformed CSV ({exc}); close every quoted field "
                        "and double any quote inside quoted text (\"\")") from None
    if not labels:
        raise DataError(f"{path} is empty; expected rows of label,text with no header")
    return TextRows(path, tuple(texts), tuple(labels))


def _check_row(path: Path, line: int, row: list[str], first: bool) -> tuple[int, str]:
    where = f"{path} line {line}"
    # One column, or a first column like "0\tHello" (a tab-separated line whose text has a comma).
    other = _OTHER_SEPARATOR.match(row[0]) if len(row) == 1 or not _INTEGER.fullmatch(row[0].strip()) else None
    if other:
        separator = "a tab" if other.group(1) == "\t" else "a semicolon"
        raise DataError(f"{where} has 1 column(s); expected 2 (label,text) separated by a comma, "
                        f"but the line uses {separator}: save the file as comma-separated CSV")
    if len(row) != 2:
        raise DataError(f"{where} has {len(row)} column(s); expected 2 (label,text). "
                        "Put text that contains commas in double quotes")
    label_text, text = row[0].strip(), row[1]
    try:
        if not _INTEGER.fullmatch(label_text):
            raise ValueError(label_text)
        label = int(label_text)
    except ValueError:
        if first and not _is_number(label_text):
            raise DataError(f"{where}: label {label_text!r} is not an integer; this looks like a "
                            "header row, and data.csv must have none: delete the first line") from None
        raise DataError(f"{where}: label {label_text!r} is not an integer; column 1 must be "
                        "an integer class label") from None
    if not text.strip():
        raise DataError(f"{where}: the text (column 2) is empty; remove the row or add its text")
    return label, text


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True
