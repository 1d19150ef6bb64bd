"""The stratified, seeded train/validation split (tf_finetune.data.split)."""

from __future__ import annotations

from collections import Counter

import pytest

from tf_finetune.data.split import stratified_split

LABELS = [0] * 50 + [1] * 10 + [2] * 2 + [3]


def test_each_class_keeps_its_share_on_each_side():
    train, val = stratified_split(LABELS, 0.2, seed=5)
    assert sorted(train + val) == list(range(len(LABELS)))  # a partition, no index lost or doubled
    assert train == sorted(train) and val == sorted(val)
    held = Counter(LABELS[i] for i in val)
    assert held == {0: 10, 1: 2, 2: 1}  # 20% of 50 and 10; a class of 2 keeps one on each side
    assert 3 not in held  # a class of one stays in training


def test_the_seed_repeats_the_split_and_another_seed_changes_it():
    assert stratified_split(LABELS, 0.3, 1) == stratified_split(LABELS, 0.3, 1)
    assert stratified_split(LABELS, 0.3, 1) != stratified_split(LABELS, 0.3, 2)


@pytest.mark.parametrize("ratio", [0.0, 0.5, 0.9])
def test_every_class_stays_in_training_even_a_class_of_one(ratio):
    train, val = stratified_split(LABELS, ratio, seed=0)
    assert {LABELS[i] for i in train} == {0, 1, 2, 3}
    assert (val == []) == (ratio == 0.0)
