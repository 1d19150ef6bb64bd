"""The model registry: the packaged hub_models.yaml, validation errors that name the file,
entry and field, look-ups, the catalogue renderings and the list-models / describe / train
command-line doors (without training and without importing TensorFlow)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

import jumpstart_docs
from helpers import REPO
from registry_cases import HUB_OR_KAGGLE, IMAGE_ENTRY, TEXT_ENTRY, write_registry
from tf_finetune.cli import catalog
from tf_finetune.errors import HyperparameterError, RegistryError
from tf_finetune.hyperparameters import SCHEMA, normalize, resolve
from tf_finetune.registry import ModelSpec, Registry, default_registry_path, load_registry


@pytest.fixture(scope="module")
def packaged() -> Registry:
    return load_registry()


def registry_error(path: Path, *fragments: str) -> str:
    """Load ``path``, expect a RegistryError naming the file and every fragment."""
    with pytest.raises(RegistryError) as info:
        load_registry(path)
    message = str(info.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


def with_second(tmp_path: Path, **changes) -> Path:
    """A registry whose second entry is TEXT_ENTRY changed by ``changes`` (None deletes)."""
    entry = dict(TEXT_ENTRY)
    for key, value in changes.items():
        if value is None:
            entry.pop(key, None)
        else:
            entry[key] = value
    return write_registry(tmp_path, [IMAGE_ENTRY, entry])


def with_second_image(tmp_path: Path, **changes) -> Path:
    """A registry whose second entry is an image entry changed by ``changes`` (None deletes)."""
    entry = dict(IMAGE_ENTRY, id="second-image")
    for key, value in changes.items():
        if value is None:
            entry.pop(key, None)
        else:
            entry[key] = value
    return write_registry(tmp_path, [TEXT_ENTRY, entry])


# ---- the packaged registry ---------------------------------------------------------------------


def test_packaged_registry_loads(packaged):
    assert isinstance(packaged, Registry)
    assert len(packaged.models) >= 12
    assert all(isinstance(m, ModelSpec) for m in packaged.models)
    assert Path(packaged.source).name == "hub_models.yaml"


def test_packaged_registry_is_the_repository_file():
    assert default_registry_path().is_file()
    assert default_registry_path().resolve() == (REPO / "tf_finetune" / "hub_models.yaml").resolve()


def test_packaged_ids_are_unique(packaged):
    ids = [m.id for m in packaged.models]
    assert len(ids) == len(set(ids))


def test_packaged_registry_covers_both_tasks(packaged):
    assert {m.task for m in packaged.models} == {"image", "text"}


def test_every_packaged_image_entry_has_an_image_size(packaged):
    images = [m for m in packaged.models if m.task == "image"]
    assert images
    for spec in images:
        assert isinstance(spec.image_size, int) and 8 <= spec.image_size <= 2048, spec.id
        assert spec.pixel_range in (None, "0,1"), spec.id
    for spec in packaged.models:
        if spec.task == "text":
            assert spec.image_size is None, spec.id


def test_every_packaged_handle_is_hub_kaggle_or_builtin(packaged):
    for spec in packaged.models:
        assert HUB_OR_KAGGLE.match(spec.handle) or spec.handle.startswith("builtin:"), spec.id
        if spec.kaggle_handle:
            assert spec.kaggle_handle.startswith("https://www.kaggle.com/models/"), spec.id
        if spec.preprocessor:
            assert HUB_OR_KAGGLE.match(spec.preprocessor), spec.id


def test_bert_family_has_preprocessor_and_output_key(packaged):
    bert = [m for m in packaged.models if m.task == "text" and m.preprocessor]
    assert bert
    for spec in bert:
        assert spec.output_key == "pooled_output", spec.id
        assert "tensorflow-text" in spec.requires, spec.id
    assert any("bert" in m.id for m in bert)


def test_packaged_overrides_parse(packaged):
    for spec in packaged.models:
        normalize(spec.hyperparameters)
        hp = resolve(packaged.task_defaults.get(spec.task), spec.hyperparameters)
        assert set(hp) == {p.name for p in SCHEMA}
    for task, values in packaged.task_defaults.items():
        assert task in ("image", "text")
        normalize(values)


def test_packaged_overrides_and_task_defaults_take_effect(packaged):
    def effective(model_id):
        spec = packaged.get(model_id)
        return resolve(packaged.task_defaults.get(spec.task), spec.hyperparameters)

    assert effective("efficientnet-v2-1k-s").batch_size == 16
    assert effective("mobilenet-v2-100-224").batch_size == 32
    bert = effective("small-bert-en-uncased-l4-h512")
    assert bert.optimizer == "adamw" and bert.learning_rate == pytest.approx(5e-5) and bert.batch_size == 64
    assert bert.epochs == 5  # override beats the text task default
    assert effective("nnlm-en-dim50").epochs == packaged.task_defaults["text"]["epochs"]


def test_wordllama_is_present(packaged):
    spec = packaged.get("wordllama-words256")
    assert spec.handle == "builtin:wordllama-words256"
    assert spec.task == "text"
    assert spec.fine_tunable is True
    assert spec.preprocessor is None


def test_a_valid_small_registry_loads_every_field(tmp_path):
    image = dict(
        IMAGE_ENTRY,
        pixel_range="0,1",
        output_dim=64,
        kaggle_handle="https://www.kaggle.com/models/x/y/TensorFlow2/z/1",
        hyperparameters={"batch-size": 8},
    )
    text = dict(
        TEXT_ENTRY,
        preprocessor="https://tfhub.dev/tensorflow/bert_en_uncased_preprocess/3",
        output_key="pooled_output",
        requires=["tensorflow-text"],
    )
    path = write_registry(tmp_path, [image, text], task_defaults={"text": {"epochs": 2}})
    registry = load_registry(path)
    assert registry.source == str(path)
    assert [m.id for m in registry.models] == ["tiny-image", "tiny-text"]
    first, second = registry.models
    assert (first.image_size, first.pixel_range, first.output_dim) == (32, "0,1", 64)
    assert first.hyperparameters == {"batch-size": 8}
    assert second.fine_tunable is False and second.requires == ("tensorflow-text",)
    assert second.output_key == "pooled_output"
    assert registry.task_defaults == {"text": {"epochs": 2}}


# ---- validation errors -------------------------------------------------------------------------


def test_duplicate_id(tmp_path):
    path = write_registry(tmp_path, [IMAGE_ENTRY, TEXT_ENTRY, dict(TEXT_ENTRY)])
    registry_error(path, "models[2]", "'tiny-text'", "id", "models[1]")


def test_unknown_task(tmp_path):
    registry_error(with_second(tmp_path, task="audio"), "models[1]", "'tiny-text'", "task", "'audio'", "image", "text")


@pytest.mark.parametrize("field", ["license", "description", "handle", "fine_tunable", "task"])
def test_missing_required_field(tmp_path, field):
    registry_error(with_second(tmp_path, **{field: None}), "models[1]", "'tiny-text'", f"'{field}'", "missing")


def test_missing_id_still_names_the_index(tmp_path):
    registry_error(with_second(tmp_path, id=None), "models[1]", "'id'", "missing")


@pytest.mark.parametrize("handle", ["not a url", "ftp://x", "tfhub.dev/google/x/1", "http://", "builtin:Upper Case"])
def test_malformed_handle(tmp_path, handle):
    registry_error(with_second(tmp_path, handle=handle), "models[1]", "'tiny-text'", "'handle'", repr(handle))


@pytest.mark.parametrize("field", ["preprocessor", "kaggle_handle"])
def test_malformed_secondary_handle(tmp_path, field):
    registry_error(
        with_second(tmp_path, **{field: "bert preprocess"}),
        "models[1]",
        "'tiny-text'",
        f"'{field}'",
        "'bert preprocess'",
    )


def test_image_entry_without_image_size(tmp_path):
    registry_error(
        with_second_image(tmp_path, image_size=None), "models[1]", "'second-image'", "'image_size'", "8..2048"
    )


@pytest.mark.parametrize("size", [4, 7, 2049, 4096, -224, "224", 224.0, True])
def test_image_size_out_of_range_or_wrong_type(tmp_path, size):
    registry_error(
        with_second_image(tmp_path, image_size=size),
        "models[1]",
        "'second-image'",
        "'image_size'",
        "8..2048",
        repr(size),
    )


@pytest.mark.parametrize("size", [8, 2048])
def test_image_size_boundaries_are_allowed(tmp_path, size):
    registry = load_registry(with_second_image(tmp_path, image_size=size))
    assert registry.get("second-image").image_size == size


def test_text_entry_with_image_size(tmp_path):
    registry_error(
        with_second(tmp_path, image_size=224), "models[1]", "'tiny-text'", "'image_size'", "image models only"
    )


def test_bad_pixel_range(tmp_path):
    registry_error(
        with_second_image(tmp_path, pixel_range="0,255"), "models[1]", "'second-image'", "'pixel_range'", "0,1"
    )


def test_unknown_field(tmp_path):
    registry_error(with_second(tmp_path, imagesize=224), "models[1]", "'tiny-text'", "imagesize", "unknown field")


@pytest.mark.parametrize("value", ["yes", "true", 1, "no"])
def test_fine_tunable_not_a_bool(tmp_path, value):
    registry_error(
        with_second(tmp_path, fine_tunable=value),
        "models[1]",
        "'tiny-text'",
        "'fine_tunable'",
        "true or false",
        repr(value),
    )


@pytest.mark.parametrize("model_id", ["Tiny Text", "-tiny", "tiny/text"])
def test_malformed_id(tmp_path, model_id):
    registry_error(with_second(tmp_path, id=model_id), "models[1]", repr(model_id), "'id'")


def test_entry_not_a_mapping(tmp_path):
    path = write_registry(tmp_path, [IMAGE_ENTRY, "tiny-text"])
    registry_error(path, "models[1]", "expected a mapping", "str")


def test_bad_hyperparameter_override_in_an_entry(tmp_path):
    path = with_second(tmp_path, hyperparameters={"epochs": 0})
    message = registry_error(path, "models[1]", "'tiny-text'", "epochs", "[1, inf)")
    assert "out of range" in message


def test_unknown_hyperparameter_override_in_an_entry(tmp_path):
    path = with_second(tmp_path, hyperparameters={"epoch": 3})
    registry_error(path, "models[1]", "'tiny-text'", "'epoch'", "unknown hyperparameter")


def test_hyperparameter_overrides_not_a_mapping(tmp_path):
    path = with_second(tmp_path, hyperparameters=["epochs", 3])
    registry_error(path, "models[1]", "'tiny-text'", "'hyperparameters'", "mapping")


def test_registry_error_keeps_the_hyperparameter_error_as_cause(tmp_path):
    with pytest.raises(RegistryError) as info:
        load_registry(with_second(tmp_path, hyperparameters={"dropout_rate": 1.0}))
    assert isinstance(info.value.__cause__, HyperparameterError)


def test_bad_hyperparameter_in_task_defaults(tmp_path):
    path = write_registry(tmp_path, [IMAGE_ENTRY], task_defaults={"image": {"epochs": 0}})
    registry_error(path, "task_defaults", "image", "epochs", "[1, inf)")


def test_unknown_task_in_task_defaults(tmp_path):
    path = write_registry(tmp_path, [IMAGE_ENTRY], task_defaults={"audio": {"epochs": 2}})
    registry_error(path, "task_defaults", "'audio'")


def test_task_defaults_not_a_mapping(tmp_path):
    path = write_registry(tmp_path, [IMAGE_ENTRY], task_defaults=["image"])
    registry_error(path, "task_defaults", "mapping")


def test_invalid_yaml(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("models:\n  - id: x\n    task: [image\n", encoding="utf-8")
    registry_error(path, "not valid YAML")


@pytest.mark.parametrize(
    "text", ["- id: x\n  task: image\n", "", "just a string\n", "models: {id: x}\n", "task_defaults: {}\n"]
)
def test_document_that_is_not_a_mapping_with_models(tmp_path, text):
    path = tmp_path / "odd.yaml"
    path.write_text(text, encoding="utf-8")
    registry_error(path, "expected a mapping with a 'models' list")


def test_missing_file(tmp_path):
    registry_error(tmp_path / "nope.yaml", "cannot read registry")


def test_a_directory_is_not_a_registry(tmp_path):
    registry_error(tmp_path, "cannot read registry")


# ---- Registry.get ------------------------------------------------------------------------------


def test_get_known_id(packaged):
    spec = packaged.get("mobilenet-v2-100-224")
    assert spec.id == "mobilenet-v2-100-224"
    assert spec.image_size == 224 and spec.task == "image"


def test_get_unknown_id_suggests_close_ids(packaged):
    with pytest.raises(RegistryError) as info:
        packaged.get("mobilenet-v2-100")
    message = str(info.value)
    assert "'mobilenet-v2-100'" in message
    assert "Did you mean" in message
    assert "mobilenet-v2-100-224" in message
    assert "list-models" in message


def test_get_unknown_id_without_close_match(packaged):
    with pytest.raises(RegistryError) as info:
        packaged.get("zzzzzzzzzz")
    message = str(info.value)
    assert "'zzzzzzzzzz'" in message
    assert "Did you mean" not in message
    assert "list-models" in message


# ---- catalogue renderings ----------------------------------------------------------------------


def _rows(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines()]


def test_table_lists_every_id_with_a_fine_tunable_column(packaged):
    rows = _rows(catalog.table())
    header, body = rows[0], rows[1:]
    assert header[:5] == ["ID", "TASK", "FINE-TUNABLE", "INPUT", "DIM"]
    assert header[-1] == "DESCRIPTION"
    assert [r[0] for r in body] == [m.id for m in packaged.models]
    column = dict((r[0], r[2]) for r in body)
    for spec in packaged.models:
        assert column[spec.id] == ("yes" if spec.fine_tunable else "no")
        assert rows[1 + packaged.models.index(spec)][1] == spec.task


def test_table_fine_tunable_column_says_no(tmp_path):
    path = write_registry(tmp_path, [IMAGE_ENTRY, TEXT_ENTRY])
    lines = catalog.table(str(path)).splitlines()
    start = lines[0].index("FINE-TUNABLE")
    assert lines[1].startswith("tiny-image") and lines[1][start:].split()[0] == "yes"
    assert lines[2].startswith("tiny-text") and lines[2][start:].split()[0] == "no"
    assert "32px" in lines[1]


@pytest.mark.parametrize("task", ["image", "text"])
def test_table_task_filter(packaged, task):
    body = _rows(catalog.table(task=task))[1:]
    assert [r[0] for r in body] == [m.id for m in packaged.models if m.task == task]
    assert {r[1] for r in body} == {task}


def test_card_of_a_bert_entry(packaged):
    spec = packaged.get("small-bert-en-uncased-l4-h512")
    text = catalog.card(None, spec.id)
    assert text.splitlines()[0] == f"{spec.id}: {spec.description}"
    assert spec.handle in text
    assert f"preprocessor:    {spec.preprocessor}" in text
    assert "output key:      pooled_output" in text
    assert "licence:         Apache-2.0" in text
    assert "requires:        tensorflow-text" in text
    assert "optimizer=adamw" in text and "epochs=5" in text


def test_card_of_wordllama():
    text = catalog.card(None, "wordllama-words256")
    assert "handle:          builtin:wordllama-words256" in text
    assert "licence:         MIT" in text
    assert "learning_rate=0.001*" in text  # the entry's own value (measured: benchmarks/quality.py)
    assert "chosen by the job when you leave it unset: epochs" in text  # a trained backbone
    assert "preprocessor" not in text


def test_card_of_an_entry_without_overrides():
    text = catalog.card(None, "mobilenet-v2-100-224")
    # every hyperparameter with its default; epochs from the image task's defaults
    assert "epochs=3+" in text and "learning_rate=0.001 " in text
    assert not re.search(r"=\S+\*", text)  # nothing set by the entry
    assert all(f"{p.name}=" in text for p in SCHEMA)
    assert "input:           224px [0,1]" in text
    assert "train_only_top_layer=True+" in text  # head-only, as JumpStart ships image models
    assert "chosen by the job when you leave them unset: regularizers_l2, epochs" in text


def test_card_from_another_registry(tmp_path):
    path = write_registry(tmp_path, [IMAGE_ENTRY, dict(TEXT_ENTRY, hyperparameters={"epochs": 4})])
    text = catalog.card(str(path), "tiny-text")
    assert "fine-tunable:    no" in text
    assert "epochs=4*" in text and "batch_size=32 " in text
    assert "augmentation" not in text and "tflite" not in text  # refused for text models
    with pytest.raises(RegistryError, match="tiny-txt"):
        catalog.card(str(path), "tiny-txt")


# ---- the command line --------------------------------------------------------------------------


# ---- SageMaker JumpStart model ids -------------------------------------------------------------


def jumpstart_registry(tmp_path: Path, unavailable=None, **image_changes) -> Path:
    """IMAGE_ENTRY answering to two JumpStart ids, TEXT_ENTRY, and the given unavailable list."""
    image = {**IMAGE_ENTRY, "jumpstart_ids": ["tensorflow-ic-tiny-1", "tensorflow-ic-tiny-21k-1"], **image_changes}
    path = write_registry(tmp_path, [image, TEXT_ENTRY])
    if unavailable is not None:
        path.write_text(path.read_text() + yaml.safe_dump({"jumpstart_unavailable": unavailable}, sort_keys=False))
    return path


LITE = {"ids": ["tensorflow-ic-lite0-2"], "reason": "published in the TF1 Hub format only.", "instead": "tiny-image"}


def test_a_jumpstart_id_finds_its_entry(tmp_path):
    registry = load_registry(jumpstart_registry(tmp_path))
    assert registry.get("tensorflow-ic-tiny-21k-1") is registry.get("tiny-image")
    assert registry.get("tiny-image").jumpstart_ids == ("tensorflow-ic-tiny-1", "tensorflow-ic-tiny-21k-1")


def test_a_misspelt_jumpstart_id_gets_the_nearest_jumpstart_ids(tmp_path):
    with pytest.raises(RegistryError, match=r"Did you mean: tensorflow-ic-tiny-1\b"):
        load_registry(jumpstart_registry(tmp_path)).get("tensorflow-ic-tinny-1")


def test_a_jumpstart_id_without_counterpart_says_why_and_what_to_use(tmp_path):
    registry = load_registry(jumpstart_registry(tmp_path, [LITE]))
    with pytest.raises(RegistryError) as info:
        registry.get("tensorflow-ic-lite0-2")
    assert "no counterpart" in str(info.value) and LITE["reason"] in str(info.value)
    assert "--model-id tiny-image" in str(info.value)


def test_a_jumpstart_id_named_twice_is_refused(tmp_path):
    twice = dict(LITE, ids=["tensorflow-ic-tiny-1"])
    registry_error(
        jumpstart_registry(tmp_path, [twice]), "jumpstart_unavailable[0]", "'tensorflow-ic-tiny-1'", "models[0]"
    )


def test_a_jumpstart_id_equal_to_a_registry_id_is_refused(tmp_path):
    registry_error(jumpstart_registry(tmp_path, jumpstart_ids=["tiny-text"]), "'tiny-text'", "unique")


def test_unavailable_must_point_at_an_entry(tmp_path):
    registry_error(jumpstart_registry(tmp_path, [dict(LITE, instead="nope")]), "jumpstart_unavailable[0]", "'nope'")


@pytest.mark.parametrize("ids", ["tensorflow-ic-tiny-1", ["has space"], [3]])
def test_malformed_jumpstart_ids(tmp_path, ids):
    registry_error(jumpstart_registry(tmp_path, jumpstart_ids=ids), "models[0]", "JumpStart ids")


def test_list_models_shows_the_jumpstart_ids_beside_ours(tmp_path):
    path = jumpstart_registry(tmp_path, [LITE])
    lines = catalog.table(str(path), jumpstart=True).splitlines()
    assert lines[0].split() == ["ID", "TASK", "FINE-TUNABLE", "INPUT", "DIM", "JUMPSTART", "MODEL", "IDS"]
    assert lines[1].split()[0] == "tiny-image" and lines[1].endswith("tensorflow-ic-tiny-1, tensorflow-ic-tiny-21k-1")
    assert lines[2].split()[0] == "tiny-text" and lines[2].endswith("-")
    assert lines[3].startswith("tensorflow-ic-lite0-2: no counterpart here") and lines[3].endswith("use tiny-image")
    assert [line.split() for line in catalog.table(str(path), "text", jumpstart=True).splitlines()[1:]] == [
        lines[2].split()
    ]
    assert "jumpstart ids:   tensorflow-ic-tiny-1, tensorflow-ic-tiny-21k-1" in catalog.card(str(path), "tiny-image")


@pytest.mark.parametrize(
    "task, ids", [("image", jumpstart_docs.IMAGE_MODEL_IDS), ("text", jumpstart_docs.TEXT_MODEL_IDS)]
)
def test_every_jumpstart_model_id_in_the_docs_is_known(packaged, task, ids):
    """Each id is an entry of its task, or a documented gap pointing at an entry of its task."""
    gaps = {name: gap for gap in packaged.unavailable for name in gap.ids}
    for model_id in ids:
        spec = packaged.get(gaps[model_id].instead) if model_id in gaps else packaged.get(model_id)
        assert spec.task == task, model_id
    assert len(gaps) <= 6  # EfficientNet-Lite (TF1 only) and ResNet 50 (no published page)
    listed = {name for spec in packaged.models for name in spec.jumpstart_ids} | set(gaps)
    assert listed == set(jumpstart_docs.IMAGE_MODEL_IDS) | set(jumpstart_docs.TEXT_MODEL_IDS)
