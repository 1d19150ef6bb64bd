"""The end-to-end half of tests/unit/test_data_text.py: the tests that train a model or run a door."""

from __future__ import annotations

from pathlib import Path


def write_bytes(path: Path, content: bytes | str) -> Path:
    """Write ``content`` exactly as given (str is UTF-8 encoded, no newline translation)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


NAMES_TIP = '; to keep the words as class names, put labels.json beside data.csv: {"0": "ham", "1": "spam"}'


WORDS = (
    "column 1 holds words, not integer labels: ham on 3 rows, spam on 1 row; data.csv needs integer "
    "class labels: replace each word with a number, e.g. ham=0, spam=1"
)


MULTILINE_PREFIX = (
    '0,"first\nrow"\n'  # lines 1-2
    '1,"second\n\nrow, with\nbreaks"\n'  # lines 3-6
    "\n"  # line 7 (blank)
    "0,plain\n"
)  # line 8


def test_train_refuses_word_labels_with_one_message_and_writes_nothing(text_module, tmp_path):
    from helpers import run_main

    data = write_bytes(tmp_path / "data.csv", "ham,a\nham,b\nspam,c\nham,d\n")
    out = tmp_path / "out"
    result = run_main(
        "train",
        "--handle",
        str(text_module),
        "--data",
        str(data),
        "--output",
        str(out),
        "--cache-dir",
        str(tmp_path / "cache"),
    )
    assert result.returncode == 1 and result.stdout == ""
    errors = [line for line in result.stderr.splitlines() if line.startswith("tf-finetune: error:")]
    assert errors == [f"tf-finetune: error: {data} line 1: label 'ham' is not an integer; {WORDS}{NAMES_TIP}"]
    assert not out.exists() or not any(out.rglob("*"))
