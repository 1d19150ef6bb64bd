"""Stratified, seeded train/validation split."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def stratified_split(labels: Sequence[int], ratio: float, seed: int) -> tuple[list[int], list[int]]:
    """Split example indices so every class keeps about ``ratio`` of its examples for validation.

    A class with at least two examples keeps at least one on each side; a class with one
    example stays in training.

    Args:
        labels: the class index of each example.
        ratio: share of each class that goes to validation, in [0, 1).
        seed: makes the split repeatable.

    Returns:
        (train indices, validation indices), each sorted.
    """
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    train, val = [], []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        rng.shuffle(members)
        n_val = held_out(len(members), ratio)
        val.extend(members[:n_val].tolist())
        train.extend(members[n_val:].tolist())
    return sorted(train), sorted(val)


def held_out(count: int, ratio: float) -> int:
    """How many of a class's ``count`` examples :func:`stratified_split` holds out for validation:
    ``ratio`` of them rounded, at least one and at most all but one (a class of one stays in training)."""
    if ratio <= 0 or count < 2:
        return 0
    return min(max(int(round(count * ratio)), 1), count - 1)
