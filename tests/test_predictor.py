"""What ``predict`` reads and answers, without a model (tf_finetune.predictor)."""
from __future__ import annotations

import re

import numpy as np
import pytest

from tf_finetune.errors import TfFinetuneError
from tf_finetune.predictor import collect_inputs, describe_failures, top_k


def test_image_arguments_are_files_and_folders_searched_for_decodable_images(tmp_path):
    for name in ("b/z.PNG", "b/deep/y.jpg", "a.gif", "notes.txt", "b/x.webp"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"not decoded here")
    single = tmp_path / "notes.txt"  # named on its own, a file is taken as it is
    assert collect_inputs([str(tmp_path / "b"), str(single)], "image") == [
        str(tmp_path / "b/deep/y.jpg"), str(tmp_path / "b/z.PNG"), str(single)]
    with pytest.raises(TfFinetuneError, match="nope.jpg: no such image file or folder"):
        collect_inputs([str(tmp_path / "nope.jpg")], "image")


def test_text_arguments_are_texts_csv_columns_txt_lines_and_stdin(tmp_path):
    (tmp_path / "data.csv").write_text('1,first text\n0,"second, with a comma"\n', encoding="utf-8")
    (tmp_path / "more.txt").write_text("\ufeffline one\n\nline two\n", encoding="utf-8")
    got = collect_inputs(["a plain text", str(tmp_path / "data.csv"), str(tmp_path / "more.txt"), "-"],
                         "text", ["from stdin\n", "   \n", "last\r\n"])
    assert got == ["a plain text", "first text", "second, with a comma", "line one", "line two",
                   "from stdin", "last"]


@pytest.mark.parametrize("make, message", [
    (lambda tmp: "   ", "an empty text: nothing to classify"),
    (lambda tmp: str(tmp), "is a folder; a text model takes texts"),
    (lambda tmp: str(tmp / "cat.jpg"), "cat.jpg is an image file and this model classifies texts"),
    (lambda tmp: str(tmp / "data.json"), "a text model reads .csv and .txt files only"),
    (lambda tmp: "reviews.txt", "reviews.txt: no such file (to classify these characters as a text"),
    (lambda tmp: "./draft", "./draft: no such file"),
])
def test_text_arguments_that_look_like_mistakes_are_refused(tmp_path, make, message):
    (tmp_path / "cat.jpg").write_bytes(b"x")
    (tmp_path / "data.json").write_text("{}")
    with pytest.raises(TfFinetuneError, match=re.escape(message)):
        collect_inputs([make(tmp_path)], "text")


def test_a_sentence_ending_in_a_suffix_is_still_a_text():
    assert collect_inputs(["see the attached report.txt"], "text") == ["see the attached report.txt"]


def test_top_k_ranks_each_row_best_first():
    probabilities = np.array([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3]])
    assert top_k(probabilities, ["a", "b", "c"], 2) == [[("b", 0.7), ("c", 0.2)], [("a", 0.5), ("c", 0.3)]]
    assert [len(row) for row in top_k(probabilities, ["a", "b", "c"], 5)] == [3, 3]


def test_failures_are_named_ten_at_most():
    inputs = [f"img{i}.jpg" for i in range(12)]
    message = describe_failures(inputs, {i: "broken" for i in range(12)})
    assert message.startswith("cannot predict on 12 input(s): img0.jpg: broken; img1.jpg: broken")
    assert "img9.jpg: broken (and 2 more)" in message and "img10" not in message
