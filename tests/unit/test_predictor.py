"""What ``predict`` reads and answers, without a model (tf_finetune.serving.predictor): real files checked
by training's rules; each unusable input is refused alone."""

from __future__ import annotations

import logging

import numpy as np
import pytest

import tiny_modules
from tf_finetune.errors import TfFinetuneError
from tf_finetune.serving.predictor import collect_inputs, describe_failures, top_k


def test_image_folders_are_read_as_training_reads_them_and_every_image_checked_alone(tmp_path, caplog):
    """Training's rules, one copy: .jpg/.jpeg/.png only (a GIF, which the model would decode, is left
    out as training leaves it out), hidden files skipped, each file a complete JPEG or PNG."""
    good = tiny_modules.write_image(tmp_path / "b" / "z.PNG", tiny_modules.COLOURS["red"], fmt="PNG")
    deep = tiny_modules.write_image(tmp_path / "b" / "deep" / "y.jpg", tiny_modules.COLOURS["blue"])
    gif = tiny_modules.write_image(tmp_path / "b" / "placeholder.gif", tiny_modules.COLOURS["red"], fmt="GIF")
    (tmp_path / "b" / "notes.txt").write_text("not an image")
    (tmp_path / "b" / "._z.PNG").write_bytes(b"macOS metadata")  # hidden: training skips it too
    truncated = tmp_path / "b" / "cut.jpg"
    truncated.write_bytes(deep.read_bytes()[:200])
    loose_gif = tiny_modules.write_image(tmp_path / "imageNotFound.gif", tiny_modules.COLOURS["red"], fmt="GIF")
    disguised = tiny_modules.write_image(tmp_path / "really_a_gif.jpg", tiny_modules.COLOURS["red"], fmt="GIF")
    with caplog.at_level(logging.WARNING, logger="tf_finetune"):
        found = collect_inputs(
            [str(tmp_path / "b"), str(loose_gif), str(disguised), str(tmp_path / "nope.jpg")], "image"
        )
    assert found.items == [
        str(truncated),
        str(good),
        str(deep),
        str(loose_gif),
        str(disguised),
        str(tmp_path / "nope.jpg"),
    ]
    assert found.refused == {
        0: "cannot be decoded (Truncated File Read)",
        3: "not a .jpg/.jpeg/.png file, and training reads only those: convert it to JPEG or PNG",
        4: "a GIF image, not JPEG or PNG",
        5: "no such image file or folder",
    }
    assert found.ignored == [str(tmp_path / "b" / "notes.txt"), str(gif)]
    assert caplog.messages == [
        f"ignored 2 file(s) that are not .jpg/.jpeg/.png, which training ignores too: "
        f"{tmp_path / 'b' / 'notes.txt'}, {gif}"
    ]


def test_a_folder_with_nothing_to_predict_on_names_what_it_holds(tmp_path):
    tiny_modules.write_image(tmp_path / "only.gif", tiny_modules.COLOURS["red"], fmt="GIF")
    with pytest.raises(TfFinetuneError) as error:
        collect_inputs([str(tmp_path)], "image")
    assert str(error.value) == (
        f"nothing to predict on in {tmp_path}: it holds 1 file(s) that are not "
        f".jpg/.jpeg/.png, which training ignores too: {tmp_path / 'only.gif'}"
    )


def test_text_arguments_are_texts_csv_columns_txt_lines_and_stdin(tmp_path):
    (tmp_path / "data.csv").write_text('1,first text\n0,"second, with a comma"\n', encoding="utf-8")
    (tmp_path / "more.txt").write_text("\ufeffline one\n\nline two\n", encoding="utf-8")
    got = collect_inputs(
        ["a plain text", str(tmp_path / "data.csv"), str(tmp_path / "more.txt"), "-"],
        "text",
        ["from stdin\n", "   \n", "last\r\n"],
    )
    assert got.items == [
        "a plain text",
        "first text",
        "second, with a comma",
        "line one",
        "line two",
        "from stdin",
        "last",
    ]
    assert got.refused == {} and got.ignored == []


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda tmp: "   ", "an empty text, nothing to classify"),
        (lambda tmp: str(tmp), "a folder; a text model takes texts"),
        (lambda tmp: str(tmp / "cat.jpg"), "an image file, and this model classifies texts"),
        (lambda tmp: str(tmp / "data.json"), "a text model reads .csv and .txt files only"),
        (lambda tmp: "reviews.txt", "no such file (to classify these characters as a text"),
        (lambda tmp: "./draft", "no such file"),
    ],
)
def test_text_arguments_that_look_like_mistakes_are_refused_alone(tmp_path, make, message):
    (tmp_path / "cat.jpg").write_bytes(b"x")
    (tmp_path / "data.json").write_text("{}")
    found = collect_inputs(["a text before", make(tmp_path), "a text after"], "text")
    assert found.items == ["a text before", make(tmp_path), "a text after"]
    assert list(found.refused) == [1] and found.refused[1].startswith(message)


def test_a_sentence_ending_in_a_suffix_is_still_a_text():
    found = collect_inputs(["see the attached report.txt"], "text")
    assert found.items == ["see the attached report.txt"] and found.refused == {}


def test_top_k_ranks_each_row_best_first():
    probabilities = np.array([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3]])
    assert top_k(probabilities, ["a", "b", "c"], 2) == [[("b", 0.7), ("c", 0.2)], [("a", 0.5), ("c", 0.3)]]
    assert [len(row) for row in top_k(probabilities, ["a", "b", "c"], 5)] == [3, 3]


def test_failures_are_named_ten_at_most():
    inputs = [f"img{i}.jpg" for i in range(12)]
    message = describe_failures(inputs, {i: "broken" for i in range(12)}, "image")
    assert message.startswith("cannot predict on 12 input(s): img0.jpg: broken; img1.jpg: broken")
    assert "img9.jpg: broken (and 2 more)" in message and "img10" not in message


def test_failed_texts_are_quoted_so_an_empty_one_shows():
    message = describe_failures(["fine", "", "x" * 100], {1: "empty", 2: "too odd"}, "text")
    assert message == f"cannot predict on 2 input(s): '': empty; '{'x' * 59}…': too odd"
