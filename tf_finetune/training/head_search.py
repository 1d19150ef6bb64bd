"""Hyperparameters the tool chooses itself, for what the user left unset.

A classification head trained on cached backbone features costs little next to the
backbone pass that computed them, so the head-only path tries a few L2 strengths, trains
each with early stopping on the validation loss (or the ``eval_metric`` asked for), and
keeps the strength and the epoch count that did best. (Measured on ants/bees: a head
trained to its best epoch with the L2 strength chosen this way is as good as a tuned
logistic regression on the same features, and much less seed-dependent than choosing the
learning rate.)

Nothing here looks at test data: the choice uses the validation split, or a stratified
part of the training data when there is none. Each choice keeps its evidence (every
candidate's score and the time taken) for the log and ``metrics.json``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from tf_finetune import hyperparameters
from tf_finetune.data.split import stratified_split  # numpy: not for the registry commands
from tf_finetune.training.eval_metrics import lower_is_better

log = logging.getLogger(__name__)

CHOOSABLE = ("regularizers_l2", "epochs")
L2_CANDIDATES = (1e-4, 1e-3, 3e-3, 1e-2, 3e-2)
MAX_EPOCHS = 100  # a head on a few hundred examples needs tens of epochs to converge
STEP_BUDGET = 1000  # steps per candidate; large datasets converge in fewer epochs
MIN_EPOCHS = 10
PATIENCE = 10
HOLDOUT_RATIO = 0.2


@dataclass(frozen=True)
class Choice:
    """One hyperparameter the tool chose, with its evidence.

    Attributes:
        name: the hyperparameter.
        value: the value chosen.
        how: how it was chosen, in words.
        candidates: candidate (as text) -> its evidence: the validation loss (or
            ``eval_metric``) of each L2 strength, or each L2 strength's best epoch.
        seconds: time the choice took (all candidates; the choices made together share it).
    """

    name: str
    value: Any
    how: str
    candidates: dict[str, float]
    seconds: float

    def describe(self) -> str:
        """One log line: ``regularizers_l2: chose 0.01 of 5 candidates by … (3.2 s)``."""
        return f"{self.name}: chose {self.value:g} {self.how} ({self.seconds:.1f} s)"

    def record(self) -> dict[str, Any]:
        """The choice as a JSON-ready dict (for ``metrics.json``)."""
        return asdict(self)


def unset(hp: hyperparameters.Hyperparameters, given: Collection[str]) -> tuple[str, ...]:
    """The choosable hyperparameters the user did not give (none when choosing is off)."""
    if not hp.choose_hyperparameters:
        return ()
    return tuple(name for name in CHOOSABLE if name not in given)


def search_epochs(steps_per_epoch: int) -> int:
    """Epochs each candidate may train: :data:`STEP_BUDGET` steps, within
    [:data:`MIN_EPOCHS`, :data:`MAX_EPOCHS`]."""
    return max(MIN_EPOCHS, min(MAX_EPOCHS, math.ceil(STEP_BUDGET / max(steps_per_epoch, 1))))


def choose_head(
    train_head: Callable[..., list[float]],
    labels: Sequence[int],
    has_validation: bool,
    hp: hyperparameters.Hyperparameters,
    names: Sequence[str],
    steps_per_epoch: int,
) -> tuple[hyperparameters.Hyperparameters, list[Choice]]:
    """Choose ``names`` (of :data:`CHOOSABLE`) for a head trained on cached features.

    Args:
        train_head: ``train_head(l2, epochs, train_rows, holdout_rows)`` trains a fresh head
            (seeded as the final one) and returns its validation ``eval_metric`` after every
            epoch. ``train_rows``/``holdout_rows`` are None to use the whole training data and
            the validation split, or training-row indices when the choice holds out a part.
        labels: the training labels (to hold out a stratified part when there is no
            validation split).
        has_validation: whether there is a validation split.
        hp: the hyperparameters (values of the names not chosen are used as they are).
        names: what to choose.
        steps_per_epoch: training steps per epoch of the final run.

    Returns:
        (the hyperparameters with the chosen values, the choices).
    """
    if not names:
        return hp, []
    train_rows = holdout_rows = None
    if not has_validation:
        train_rows, holdout_rows = stratified_split(labels, HOLDOUT_RATIO, hp.random_seed)
        if not holdout_rows or not train_rows:
            log.info("hyperparameters are not chosen: too little training data to hold a part out")
            return hp, []
    choose_epochs = "epochs" in names
    candidates = L2_CANDIDATES if "regularizers_l2" in names else (hp.regularizers_l2,)
    epochs = search_epochs(steps_per_epoch) if choose_epochs else hp.epochs
    sign = 1 if lower_is_better(hp.eval_metric) else -1  # what is minimised: the loss, or minus the metric
    started = time.perf_counter()
    results = {
        l2: _best_epoch(train_head(l2, epochs, train_rows, holdout_rows), choose_epochs, sign) for l2 in candidates
    }
    seconds = time.perf_counter() - started
    choices = _choices(names, results, epochs, sign, _judged_on(hp.eval_metric, has_validation), round(seconds, 2))
    for choice in choices:
        log.info("%s", choice.describe())
    return hyperparameters.resolve(hp, {choice.name: choice.value for choice in choices}), choices


def _choices(
    names: Sequence[str], results: dict[float, tuple[float, int]], epochs: int, sign: int, on: str, seconds: float
) -> list[Choice]:
    """What the candidates' ``results`` (L2 strength -> its score and best epoch) choose of
    ``names``: the strength whose best score is lowest (``sign`` 1) or highest (-1), ties to
    the smaller, and that strength's best epoch; each with its evidence. ``on`` says what the
    scores are; ``epochs``, how many each candidate could train; ``seconds``, the time taken."""
    choose_epochs = "epochs" in names
    l2 = min(results, key=lambda value: (sign * results[value][0], value))
    choices = []
    if "regularizers_l2" in names:
        when = f"each at its best epoch of up to {epochs}" if choose_epochs else f"after {epochs} epochs"
        choices.append(
            Choice(
                "regularizers_l2",
                l2,
                f"of {len(results)} candidates by {on} on cached features, {when}",
                {f"{value:g}": round(score, 5) for value, (score, _) in results.items()},
                seconds,
            )
        )
    if choose_epochs:
        best = "lowest" if sign == 1 else "highest"
        choices.append(
            Choice(
                "epochs",
                results[l2][1],
                f"of up to {epochs}: the epoch with the {best} {on} (early stopping, patience {PATIENCE})",
                {f"{value:g}": epoch for value, (_, epoch) in results.items()},
                seconds,
            )
        )
    return choices


def _judged_on(metric: str, has_validation: bool) -> str:
    return (
        f"validation {metric}"
        if has_validation
        else f"the {metric} on {HOLDOUT_RATIO:.0%} of the training data held out"
    )


def _best_epoch(scores: list[float], choose_epochs: bool, sign: int) -> tuple[float, int]:
    """(score, epoch from 1) of a candidate: its first best epoch, or its last when the number of
    epochs is not chosen (the final run trains exactly that many)."""
    best = min(range(len(scores)), key=lambda i: sign * scores[i]) if choose_epochs else len(scores) - 1
    return float(scores[best]), best + 1


def kept_epoch(best_epoch: int, scores: dict[int, float], metric: str = "loss") -> Choice:
    """The choice of ``epochs`` when the backbone trains: every epoch ran, and the weights of
    the one with the best validation ``metric`` were kept (see :class:`~tf_finetune.training.fit_loop.BestEpoch`).

    Args:
        best_epoch: the epoch kept (1-based).
        scores: epoch -> its validation ``metric``.
        metric: the ``eval_metric``.
    """
    return Choice(
        "epochs",
        best_epoch,
        f"of {max(scores)} run: the epoch with the {_best(metric)} (its weights are kept)",
        {str(e): round(v, 5) for e, v in scores.items()},
        0.0,
    )


def _best(metric: str) -> str:
    """``lowest validation loss`` / ``highest validation auc``."""
    return f"{'lowest' if lower_is_better(metric) else 'highest'} validation {metric}"
