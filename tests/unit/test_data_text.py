"""Text data: reading and checking data.csv, label mapping, splitting, and the load_data door.

Every test writes a real CSV (or folder) into tmp_path and reads it with the library.
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from tf_finetune.data import LabelMap, load_data
from tf_finetune.data.text import find_csv, read_text_csv
from tf_finetune.errors import DataError
from tiny_modules import COLOURS, write_image, write_image_folder, write_text_csv


def write_bytes(path: Path, content: bytes | str) -> Path:
    """Write ``content`` exactly as given (str is UTF-8 encoded, no newline translation)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def read_error(path: Path) -> str:
    """The DataError message read_text_csv raises for ``path``."""
    with pytest.raises(DataError) as info:
        read_text_csv(path)
    return str(info.value)


def at_line(path: Path, line: int) -> str:
    """Regex for 'FILE line N' at the start of a message (N not followed by another digit)."""
    return rf"^{re.escape(str(path))} line {line}\b"


# --- valid files and the label mapping ----------------------------------------------------------


@pytest.mark.parametrize("labels", [(0, 1, 2), (1, 2, 3), (-1, 5, 10), (100, 7, 42)])
def test_integer_labels_map_to_contiguous_indices_in_label_order(tmp_path, labels):
    order = [labels[2], labels[0], labels[1], labels[2], labels[0], labels[1]]
    csv_path = write_bytes(tmp_path / "data.csv", "".join(f"{v},text {i}\n" for i, v in enumerate(order)))

    split = load_data("text", csv_path, validation_split_ratio=0)

    ordered = tuple(sorted(labels))
    assert split.label_map.original_labels == ordered
    assert split.label_map.class_names == tuple(str(v) for v in ordered)
    assert split.label_map.num_classes == 3
    assert split.train.inputs == tuple(f"text {i}" for i in range(6))
    assert split.train.labels == tuple(ordered.index(v) for v in order)
    assert split.validation is None


def test_label_map_json_round_trip_keeps_original_labels():
    label_map = LabelMap.from_integer_labels([10, -1, 5, 10, -1])
    assert label_map.original_labels == (-1, 5, 10)

    document = json.loads(label_map.to_json())
    assert document["num_classes"] == 3
    assert document["class_names"] == ["-1", "5", "10"]
    assert document["index_to_name"] == {"0": "-1", "1": "5", "2": "10"}
    assert document["original_labels"] == [-1, 5, 10]
    assert document["index_to_original_label"] == {"0": -1, "1": 5, "2": 10}

    assert LabelMap.from_json(label_map.to_json()) == label_map


def test_label_map_json_round_trip_without_original_labels():
    label_map = LabelMap(("cats", "dogs", "émeus"))
    text = label_map.to_json()
    assert "original_labels" not in json.loads(text)
    assert "émeus" in text  # written as UTF-8, not \\u escapes
    assert LabelMap.from_json(text) == label_map


def test_csv_quoting_reads_back_exactly(tmp_path):
    content = (
        '0,"a, b, and c"\n'
        '1,"she said ""hi"" twice"\n'
        '0,"line one\nline two\n\nline four"\n'
        '1,"windows\r\nbreak"\n'
        "0,plain text\n"
    )
    rows = read_text_csv(write_bytes(tmp_path / "data.csv", content))
    assert rows.texts == (
        "a, b, and c",
        'she said "hi" twice',
        "line one\nline two\n\nline four",
        "windows\r\nbreak",
        "plain text",
    )
    assert rows.labels == (0, 1, 0, 1, 0)


def test_csv_written_by_csv_writer_round_trips(tmp_path):
    texts = [
        "comma, inside",
        'quote " inside',
        '""double""',
        "new\nline",
        "  leading and trailing  ",
        "tab\there",
        "semi;colon",
        "ünïcödé 日本語 🙂",
    ]
    path = tmp_path / "data.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([i % 2, text] for i, text in enumerate(texts))
    rows = read_text_csv(path)
    assert rows.texts == tuple(texts)
    assert rows.labels == tuple(i % 2 for i in range(len(texts)))


def test_utf8_bom_is_stripped(tmp_path):
    path = write_bytes(tmp_path / "data.csv", b"\xef\xbb\xbf" + "3,première\n4,deuxième\n".encode())
    rows = read_text_csv(path)
    assert rows.labels == (3, 4)
    assert rows.texts == ("première", "deuxième")


def test_crlf_line_endings(tmp_path):
    path = write_bytes(tmp_path / "data.csv", b"0,first\r\n1,second\r\n0,third\r\n")
    rows = read_text_csv(path)
    assert rows.texts == ("first", "second", "third")
    assert rows.labels == (0, 1, 0)


def test_crlf_line_numbers_in_errors(tmp_path):
    path = write_bytes(tmp_path / "data.csv", b"0,first\r\n1,second\r\nx,third\r\n")
    assert re.search(at_line(path, 3), read_error(path))


def test_non_ascii_text(tmp_path):
    texts = ("Grüße aus Köln", "Привет, мир", "東京は晴れ", "emoji 🎉🚀", "עברית")
    path = write_bytes(tmp_path / "data.csv", "".join(f'{i % 2},"{t}"\n' for i, t in enumerate(texts)))
    assert read_text_csv(path).texts == texts


def test_trailing_and_inner_blank_lines_are_ignored(tmp_path):
    path = write_bytes(tmp_path / "data.csv", "0,a\n\n1,b\n   \n\n\n  \n")
    rows = read_text_csv(path)
    assert rows.texts == ("a", "b")
    assert rows.labels == (0, 1)


def test_label_with_spaces_is_accepted(tmp_path):
    rows = read_text_csv(write_bytes(tmp_path / "data.csv", " 1 ,a\n2,b\n"))
    assert rows.labels == (1, 2)


# --- find_csv -----------------------------------------------------------------------------------


def test_find_csv_in_folder_with_data_csv(tmp_path):
    write_bytes(tmp_path / "other.csv", "0,a\n")
    data = write_bytes(tmp_path / "data.csv", "0,a\n1,b\n")
    assert find_csv(tmp_path) == data
    assert read_text_csv(tmp_path).path == data


def test_find_csv_file_given_directly(tmp_path):
    path = write_bytes(tmp_path / "whatever.csv", "0,a\n")
    assert find_csv(path) == path


def test_find_csv_single_other_csv(tmp_path):
    only = write_bytes(tmp_path / "reviews.csv", "0,a\n1,b\n")
    write_bytes(tmp_path / "notes.txt", "not csv")
    assert find_csv(tmp_path) == only
    assert read_text_csv(tmp_path).texts == ("a", "b")


def test_find_csv_two_csvs_without_data_csv_lists_them(tmp_path):
    write_bytes(tmp_path / "train_a.csv", "0,a\n")
    write_bytes(tmp_path / "train_b.csv", "1,b\n")
    with pytest.raises(DataError, match=r"needs a data\.csv") as info:
        find_csv(tmp_path)
    message = str(info.value)
    assert str(tmp_path) in message
    assert "train_a.csv" in message and "train_b.csv" in message


def test_find_csv_folder_without_csv(tmp_path):
    with pytest.raises(DataError, match=r"needs a data\.csv \(found no \.csv file\)"):
        find_csv(tmp_path)


def test_find_csv_missing_path(tmp_path):
    missing = tmp_path / "nowhere" / "data.csv"
    with pytest.raises(DataError, match=rf"{re.escape(str(missing))} does not exist"):
        find_csv(missing)
    with pytest.raises(DataError, match="does not exist"):
        load_data("text", missing)


# --- errors: each names the file and the line ---------------------------------------------------


def test_header_row_on_line_1(tmp_path):
    path = write_bytes(tmp_path / "data.csv", "label,text\n0,a\n1,b\n")
    message = read_error(path)
    assert re.search(at_line(path, 1), message)
    assert "'label'" in message
    assert "looks like a header" in message
    assert "delete the first line" in message


def test_non_integer_label_on_later_line(tmp_path):
    path = write_bytes(tmp_path / "data.csv", "0,a\n1,b\nabc,c\n0,d\n")
    message = read_error(path)
    assert re.search(at_line(path, 3), message)
    assert "'abc'" in message
    assert "not an integer" in message
    assert "header" not in message


@pytest.mark.parametrize("label", ["1.5", "1.0", "2e3"])
def test_float_label(tmp_path, label):
    path = write_bytes(tmp_path / "data.csv", f"0,a\n{label},b\n")
    message = read_error(path)
    assert re.search(at_line(path, 2), message)
    assert f"'{label}'" in message
    assert "must be an integer class label" in message


@pytest.mark.parametrize("label", ["1.0", "-3.5"])
def test_float_label_on_first_line_is_not_called_a_header(tmp_path, label):
    # Telling the user to delete line 1 would throw away a data row.
    path = write_bytes(tmp_path / "data.csv", f"{label},a\n1,b\n")
    message = read_error(path)
    assert re.search(at_line(path, 1), message)
    assert f"'{label}'" in message and "not an integer" in message
    assert "header" not in message and "delete" not in message


# --- column 1 holding words; tab- and semicolon-separated files ----------------------------------

NAMES_TIP = '; to keep the words as class names, put labels.json beside data.csv: {"0": "ham", "1": "spam"}'
WORDS = (
    "column 1 holds words, not integer labels: ham on 3 rows, spam on 1 row; data.csv needs integer "
    "class labels: replace each word with a number, e.g. ham=0, spam=1"
)


def test_word_labels_are_told_as_words_with_a_mapping_not_as_a_header(tmp_path):
    path = write_bytes(
        tmp_path / "data.csv",
        'ham,"Go until jurong point, crazy.."\nham,Ok lar...\n'
        "spam,Free entry in 2 a wkly comp\nham,U dun say so early hor\n",
    )
    assert read_error(path) == f"{path} line 1: label 'ham' is not an integer; {WORDS}{NAMES_TIP}"

    # Doing what it says trains, with the words as class names.
    mapped = path.read_text("utf-8").replace("ham,", "0,").replace("spam,", "1,")
    folder = tmp_path / "fixed"
    write_bytes(folder / "data.csv", mapped)
    write_bytes(folder / "labels.json", NAMES_TIP.split(": ", 1)[1])
    split = load_data("text", folder, validation_split_ratio=0)
    assert split.label_map.class_names == ("ham", "spam") and split.train.labels == (0, 0, 1, 0)


def test_word_labels_under_a_header_say_both(tmp_path):
    path = write_bytes(tmp_path / "data.csv", "Label,SMS\nham,a\nham,b\nspam,c\nham,d\n")
    assert read_error(path) == (
        f"{path} line 1: label 'Label' is not an integer; {WORDS}, and delete line 1 "
        f"('Label'), which looks like a header row{NAMES_TIP}"
    )


@pytest.mark.parametrize("separator, name", [("\t", "a tab"), (";", "a semicolon")])
def test_tab_and_semicolon_separated_files_are_told_so_whatever_column_1_holds(tmp_path, separator, name):
    said = (
        f"line 1 uses {name} between label and text; data.csv is comma-separated (label,text): save the "
        "file as comma-separated CSV"
    )
    words = write_bytes(
        tmp_path / "words.csv",
        f"ham{separator}Go until jurong point, crazy..\nham{separator}b\nspam{separator}c\nham{separator}d\n",
    )
    also = WORDS.replace("column 1 holds", "column 1 also holds")
    assert read_error(words) == f"{words} {said}; {also}{NAMES_TIP}"
    numbers = write_bytes(tmp_path / "numbers.csv", f"0{separator}a, b\n1{separator}c\n")
    assert read_error(numbers) == f"{numbers} {said}"


def test_a_semicolon_in_one_label_is_not_a_semicolon_separated_file(tmp_path):
    path = write_bytes(tmp_path / "data.csv", "0,a\n1,b\nnote; see,c\n0,d\n")
    assert read_error(path) == (
        f"{path} line 3: label 'note; see' is not an integer; column 1 must be an integer class label"
    )


def test_a_first_line_is_a_header_only_when_the_rest_are_integers(tmp_path):
    # Two words, neither repeated, are too few to call them classes, and deleting line 1 would not help.
    path = write_bytes(tmp_path / "data.csv", "ham,a\nspam,b\n")
    assert read_error(path) == f"{path} line 1: label 'ham' is not an integer; column 1 must be an integer class label"


def test_the_sms_spam_collection_as_downloaded_gets_every_fix_in_one_message(shared):
    raw = shared / "data" / "sms_spam" / "SMSSpamCollection"  # tab-separated, header "Label<TAB>SMS", ham/spam
    assert read_error(raw) == (
        f"{raw} line 1 uses a tab between label and text; data.csv is comma-separated (label,text): save the "
        "file as comma-separated CSV; column 1 also holds words, not integer labels: ham on 4827 rows, spam on "
        "747 rows; data.csv needs integer class labels: replace each word with a number, e.g. ham=0, spam=1, "
        f"and delete line 1 ('Label'), which looks like a header row{NAMES_TIP}"
    )


@pytest.mark.parametrize("text", ["", "   ", '"  \t "'])
def test_empty_text(tmp_path, text):
    path = write_bytes(tmp_path / "data.csv", f"0,a\n1,b\n1,{text}\n0,d\n")
    message = read_error(path)
    assert re.search(at_line(path, 3), message)
    assert "text (column 2) is empty" in message


def test_missing_column(tmp_path):
    path = write_bytes(tmp_path / "data.csv", "0,a\n1\n")
    message = read_error(path)
    assert re.search(at_line(path, 2), message)
    assert "1 column(s); expected 2 (label,text)" in message


def test_extra_columns_hint_about_quoting(tmp_path):
    path = write_bytes(tmp_path / "data.csv", "0,a\n1,b\n0,hello, world\n")
    message = read_error(path)
    assert re.search(at_line(path, 3), message)
    assert "3 column(s); expected 2" in message
    assert "double quotes" in message


def test_invalid_utf8_names_line_and_byte(tmp_path):
    path = write_bytes(tmp_path / "data.csv", b"0,a\n1,b\n0,caf\xe9 latin-1\n1,d\n")
    message = read_error(path)
    assert re.search(at_line(path, 3), message)
    assert "not valid UTF-8" in message
    assert "0xe9" in message
    assert "save the file as UTF-8" in message


def test_invalid_utf8_line_counts_quoted_newlines_and_bom(tmp_path):
    content = b"\xef\xbb\xbf" + b'0,"one\ntwo"\n1,b\n\n1,\xff\xfe\n'
    path = write_bytes(tmp_path / "data.csv", content)
    message = read_error(path)
    assert re.search(at_line(path, 5), message)
    assert "0xff" in message


def test_empty_file(tmp_path):
    path = write_bytes(tmp_path / "data.csv", b"")
    message = read_error(path)
    assert str(path) in message and "is empty" in message
    assert "label,text" in message


def test_file_with_only_blank_lines(tmp_path):
    path = write_bytes(tmp_path / "data.csv", "\n\n   \n\r\n\n")
    message = read_error(path)
    assert str(path) in message and "is empty" in message


def test_bom_only_file_is_empty(tmp_path):
    path = write_bytes(tmp_path / "data.csv", b"\xef\xbb\xbf\n")
    assert "is empty" in read_error(path)


def test_unclosed_quote_is_an_error_not_swallowed_rows(tmp_path):
    # Without a check, the rest of the file silently becomes the text of line 2.
    path = write_bytes(tmp_path / "data.csv", '0,a\n1,"never closed\n0,c\n1,d\n0,e\n')
    message = read_error(path)
    assert re.search(at_line(path, 2), message)
    assert "malformed CSV" in message
    assert "quote" in message


def test_text_after_closing_quote_is_malformed(tmp_path):
    path = write_bytes(tmp_path / "data.csv", '0,a\n1,b\n0,"he said "hi" there"\n1,d\n')
    message = read_error(path)
    assert re.search(at_line(path, 3), message)
    assert "malformed CSV" in message


def test_field_beyond_csv_limit_names_line(tmp_path):
    huge = "x" * (csv.field_size_limit() + 10)
    path = write_bytes(tmp_path / "data.csv", f"0,a\n1,b\n0,{huge}\n1,d\n0,e\n")
    message = read_error(path)
    assert re.search(at_line(path, 3), message)
    assert "field limit" in message


def test_huge_quoted_field_names_the_line_where_it_starts(tmp_path):
    huge = "word\n" * (csv.field_size_limit() // 5 + 10)
    path = write_bytes(tmp_path / "data.csv", f'0,a\n1,b\n0,"{huge}"\n1,d\n')
    message = read_error(path)
    assert re.search(at_line(path, 3), message)
    assert "field limit" in message


# --- line numbers after rows with quoted newlines -----------------------------------------------

MULTILINE_PREFIX = (
    '0,"first\nrow"\n'  # lines 1-2
    '1,"second\n\nrow, with\nbreaks"\n'  # lines 3-6
    "\n"  # line 7 (blank)
    "0,plain\n"
)  # line 8


@pytest.mark.parametrize(
    "bad_row, expected",
    [
        ("oops,text\n", "'oops' is not an integer"),
        ("1,\n", "text (column 2) is empty"),
        ("1\n", "1 column(s)"),
        ("1,a,b\n", "3 column(s)"),
        ('1,"unclosed\n0,x\n', "malformed CSV"),
        ('1,"x"y\n', "malformed CSV"),
    ],
)
def test_line_number_is_physical_start_line_after_quoted_newlines(tmp_path, bad_row, expected):
    path = write_bytes(tmp_path / "data.csv", MULTILINE_PREFIX + bad_row + "1,after\n")
    message = read_error(path)
    assert re.search(at_line(path, 9), message), message
    assert expected in message


def test_line_number_of_bad_row_that_itself_spans_lines(tmp_path):
    path = write_bytes(tmp_path / "data.csv", '0,a\n1,"b\nc"\n0,"d\ne",extra\n1,f\n')
    message = read_error(path)
    assert re.search(at_line(path, 4), message)
    assert "3 column(s)" in message


# --- load_data ----------------------------------------------------------------------------------


def test_only_one_class(tmp_path):
    path = write_bytes(tmp_path / "data.csv", "".join(f"7,text {i}\n" for i in range(10)))
    with pytest.raises(DataError, match=r"only one class \(label 7\); at least 2 classes") as info:
        load_data("text", path)
    assert str(path) in str(info.value)


def test_validation_label_missing_from_training(tmp_path):
    train = write_text_csv(tmp_path / "train" / "data.csv", rows_per_class=4, labels=(0, 1))
    val = write_bytes(tmp_path / "val" / "data.csv", "0,a\n9,b\n1,c\n5,d\n9,e\n")
    with pytest.raises(DataError, match=r"labels that the training data does not have: \[5, 9\]") as info:
        load_data("text", train, val)
    assert str(val) in str(info.value)


def test_validation_file_may_lack_a_class(tmp_path, caplog):
    train = write_text_csv(tmp_path / "train" / "data.csv", rows_per_class=4, labels=(0, 1, 2))
    val = write_bytes(tmp_path / "val" / "data.csv", "0,a\n2,b\n")
    split = load_data("text", train, val)
    assert split.validation.labels == (0, 2)
    assert f"{val} has no examples of 1 of the 3 classes (1): their recall is not measured" in caplog.text


def test_validation_file_used_as_given(tmp_path):
    train = write_text_csv(tmp_path / "train" / "data.csv", rows_per_class=5, labels=(1, 2))
    write_bytes(tmp_path / "val" / "data.csv", "2,v one\n1,v two\n2,v three\n")

    split = load_data("text", train, tmp_path / "val", validation_split_ratio=0.5)

    assert split.validation.inputs == ("v one", "v two", "v three")
    assert split.validation.labels == (1, 0, 1)  # mapped with training's 1 -> 0, 2 -> 1
    assert len(split.train) == 10  # nothing held out of training
    assert split.label_map.original_labels == (1, 2)


def test_validation_split_is_stratified(tmp_path):
    path = tmp_path / "data.csv"
    rows = [0] * 20 + [1] * 8 + [2] * 2 + [3] * 12
    write_bytes(path, "".join(f"{v},text {i}\n" for i, v in enumerate(rows)))

    split = load_data("text", path, validation_split_ratio=0.25, seed=3)

    val_counts, train_counts = Counter(split.validation.labels), Counter(split.train.labels)
    assert val_counts == {0: 5, 1: 2, 2: 1, 3: 3}
    assert train_counts == {0: 15, 1: 6, 2: 1, 3: 9}
    # the two sides are a partition of the file, with labels still attached to their texts
    assert sorted(split.train.inputs + split.validation.inputs) == sorted(f"text {i}" for i in range(len(rows)))
    for text, label in zip(split.train.inputs + split.validation.inputs, split.train.labels + split.validation.labels):
        assert rows[int(text.split()[1])] == label


def test_validation_split_is_seeded(tmp_path):
    path = tmp_path / "data.csv"
    write_bytes(path, "".join(f"{i % 3},text {i}\n" for i in range(90)))

    first = load_data("text", path, validation_split_ratio=0.2, seed=11)
    again = load_data("text", path, validation_split_ratio=0.2, seed=11)
    other = load_data("text", path, validation_split_ratio=0.2, seed=12)

    assert first.validation == again.validation and first.train == again.train
    assert set(first.validation.inputs) != set(other.validation.inputs)
    assert len(first.validation) == len(other.validation) == 18


def test_validation_split_ratio_zero_means_no_validation(tmp_path):
    path = write_text_csv(tmp_path / "data.csv", rows_per_class=6, labels=(3, 8))
    split = load_data("text", path, validation_split_ratio=0)
    assert split.validation is None
    assert len(split.train) == 12
    assert split.task == "text"


def test_load_data_text_from_folder(tmp_path):
    write_text_csv(tmp_path / "data.csv", rows_per_class=5, labels=(0, 1))
    split = load_data("text", tmp_path, validation_split_ratio=0.2)
    assert len(split.train) + len(split.validation) == 10


def test_image_task_given_text_data(tmp_path):
    path = write_text_csv(tmp_path / "text" / "data.csv", rows_per_class=3)
    for target in (path, path.parent):
        with pytest.raises(DataError, match="holds text data .* image model") as info:
            load_data("image", target)
        assert str(target) in str(info.value)
        assert "--task text" in str(info.value)


def test_text_task_given_image_folder(tmp_path):
    root = write_image_folder(tmp_path / "images", per_class=2)
    with pytest.raises(DataError, match="no data.csv but the model is a text model") as info:
        load_data("text", root)
    assert str(root) in str(info.value)
    assert "--task image" in str(info.value)


def test_text_task_given_an_image_file(tmp_path):
    image = write_image(tmp_path / "one.jpg", COLOURS["red"])
    with pytest.raises(DataError, match="not valid UTF-8") as info:
        load_data("text", image)
    assert str(image) in str(info.value)


# --- class names: labels.json beside the CSV -----------------------------------------------------


def write_names(folder: Path, names: dict | str, file_name: str = "labels.json") -> Path:
    return write_bytes(folder / file_name, names if isinstance(names, str) else json.dumps(names))


def test_labels_json_beside_the_csv_names_the_classes_and_keeps_the_labels(tmp_path):
    csv_path = write_bytes(tmp_path / "data.csv", "5,cheap pills\n-1,hello mum\n5,win now\n-1,see you\n")
    write_names(tmp_path, {"5": "spam", "-1": "ham 😀"}, "LABELS.JSON")
    for path in (csv_path, tmp_path):
        split = load_data("text", path, validation_split_ratio=0)
        assert split.label_map == LabelMap(("ham 😀", "spam"), (-1, 5))  # indices in label order
        assert split.train.labels == (1, 0, 1, 0)
    assert json.loads(split.label_map.to_json())["original_labels"] == [-1, 5]


@pytest.mark.parametrize(
    "names, message",
    [
        (
            {"0": "ham"},
            r"labels.json has no name for label\(s\) 1, which .*data.csv has; give every label of the "
            r"data a name, e\.g\. \{\"0\": \"ham\", \"1\": \"spam\"\}",
        ),
        (
            {"0": "ham", "1": "spam", "2": "eggs", "7": "x"},
            r"labels.json names label\(s\) 2, 7, which .*data.csv does not have; remove them, or add rows",
        ),
    ],
)
def test_labels_json_names_exactly_the_labels_of_the_data(tmp_path, names, message):
    write_text_csv(tmp_path / "data.csv", rows_per_class=2)
    write_names(tmp_path, names)
    with pytest.raises(DataError, match=rf"^{re.escape(str(tmp_path))}/{message}"):
        load_data("text", tmp_path)


def test_two_names_files_or_a_folder_named_labels_json_are_refused(tmp_path):
    write_text_csv(tmp_path / "data.csv", rows_per_class=2)
    write_names(tmp_path, {"0": "a", "1": "b"})
    write_names(tmp_path, {"0": "b", "1": "a"}, "Labels.json")
    with pytest.raises(
        DataError,
        match=rf"^{re.escape(str(tmp_path))} holds 2 class names files "
        r"\(Labels.json, labels.json\); keep one labels.json",
    ):
        load_data("text", tmp_path)
    (tmp_path / "Labels.json").unlink()
    (tmp_path / "labels.json").unlink()
    (tmp_path / "labels.json").mkdir()
    with pytest.raises(DataError, match=r"labels.json is not a file; the class names of data.csv go in"):
        load_data("text", tmp_path)


def test_validation_data_names_its_classes_as_the_training_data_or_not_at_all(tmp_path):
    train = write_text_csv(tmp_path / "train" / "data.csv", rows_per_class=3).parent
    val = write_text_csv(tmp_path / "val" / "data.csv", rows_per_class=2).parent
    write_names(train, {"0": "ham", "1": "spam"})
    assert load_data("text", train, val).label_map.class_names == ("ham", "spam")  # no names: the training's
    write_names(val, {"1": "spam", "0": "ham"})
    assert load_data("text", train, val).label_map.class_names == ("ham", "spam")

    write_names(val, {"0": "ham", "1": "junk"})
    with pytest.raises(
        DataError,
        match=re.escape(
            f"{val / 'labels.json'} contradicts the training data's class names (label 1 is 'junk' here "
            "and 'spam' in training); give this data the training data's labels.json, or none: "
            '{"0": "ham", "1": "spam"}'
        ),
    ):
        load_data("text", train, val)
    (train / "labels.json").unlink()
    with pytest.raises(
        DataError,
        match=re.escape(
            "(label 0 is 'ham' here and '0' in training; label 1 is 'junk' here and '1' in training); the "
            "training classes have no names (no labels.json beside the training data): put this "
            "labels.json beside the training data too, or remove it"
        ),
    ):
        load_data("text", train, val)


def test_on_sagemaker_the_names_travel_in_each_channel_beside_data_csv(text_module, tmp_path, capsys):
    from tf_finetune.sagemaker.container import main

    channels = tmp_path / "input" / "data"
    for channel, names in (("training", {"0": "ham", "1": "spam"}), ("validation", {"0": "spam", "1": "ham"})):
        write_names(write_text_csv(channels / channel / "data.csv", rows_per_class=3).parent, names)
    environ = {
        "SAGEMAKER_BASE_DIR": str(tmp_path),
        "SM_CHANNEL_TRAINING": str(channels / "training"),
        "SM_CHANNEL_VALIDATION": str(channels / "validation"),
        "SM_CHANNEL_MODEL": str(text_module),
    }
    assert main(["--epochs", "1"], environ) == 1
    failure = (tmp_path / "output" / "failure").read_text()
    assert failure.startswith(
        f"{channels / 'validation' / 'labels.json'} contradicts the training data's "
        "class names (label 0 is 'spam' here and 'ham' in training;"
    ), failure
    assert "Traceback" not in capsys.readouterr().err
    assert not (tmp_path / "model").exists() or not any((tmp_path / "model").iterdir())
