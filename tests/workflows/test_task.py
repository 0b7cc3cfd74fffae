"""`validate --task` (workflows/task.py): each rule of auto fires on the model and labels it is for and
stays quiet on the others, and an explicit task that cannot be measured is refused with the reason."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from program_fixtures import autoencoder_program, small_program
from tinyrobust.converter.passes.structure import dropped_final_softmax, final_softmax_note
from tinyrobust.converter.program import Program
from tinyrobust.errors import BadInputError
from tinyrobust.workflows.task import choose_task

CLASSES = np.array([0, 3, 1, 2])
ANOMALY = np.array([0, 0, 1, 0])


def _with_softmax(program: Program) -> Program:
    return replace(program, notes=(*program.notes, final_softmax_note("probs")))


def test_the_softmax_note_is_read_back_and_only_that_note() -> None:
    assert dropped_final_softmax([final_softmax_note("probs")]) == "probs"
    assert dropped_final_softmax(["final softmax of '' not deployed", "the input grid comes from calibration"]) is None
    assert dropped_final_softmax([]) is None


def test_auto_takes_a_model_ending_in_softmax_for_a_classifier_whatever_its_shape() -> None:
    choice = choose_task("auto", _with_softmax(small_program()), None)
    assert choice.kind == "classification" and "softmax 'probs'" in choice.reason
    assert choose_task("auto", _with_softmax(autoencoder_program()), ANOMALY).kind == "classification"
    assert "chosen by --task auto" in choice.describe()


def test_auto_takes_an_autoencoder_with_anomaly_labels_for_anomaly_and_without_for_regression() -> None:
    anomaly = choose_task("auto", autoencoder_program(), ANOMALY)
    assert anomaly.kind == "anomaly" and "input's shape (16)" in anomaly.reason and "0/1" in anomaly.reason
    plain = choose_task("auto", autoencoder_program(), None)
    assert plain.kind == "regression" and "no labels" in plain.reason
    classes = choose_task("auto", autoencoder_program(), CLASSES)
    assert classes.kind == "regression" and "other than 0/1" in classes.reason


def test_auto_takes_labels_of_a_model_without_softmax_for_classes() -> None:
    choice = choose_task("auto", small_program(), CLASSES)
    assert choice.kind == "classification" and "classes of the 4 outputs" in choice.reason
    # labels beyond the outputs are still a classification: validate then refuses them as not classes
    assert choose_task("auto", small_program(), np.array([0, 9])).kind == "classification"


def test_auto_without_labels_and_without_softmax_is_regression() -> None:
    choice = choose_task("auto", small_program(), None)
    assert choice.kind == "regression" and "no labels" in choice.reason


def test_explicit_tasks_are_taken_as_said() -> None:
    assert choose_task("classification", autoencoder_program(), ANOMALY).kind == "classification"
    said = choose_task("regression", small_program(), CLASSES)
    assert said.kind == "regression" and said.requested == "regression" and "as --task says" in said.describe()
    assert choose_task("anomaly", autoencoder_program(), ANOMALY).kind == "anomaly"


@pytest.mark.parametrize(("task", "program", "y", "message"), [
    ("regression", _with_softmax(small_program()), None, "ends in the softmax 'probs'"),
    ("anomaly", _with_softmax(autoencoder_program()), ANOMALY, "ends in the softmax 'probs'"),
    ("anomaly", small_program(), ANOMALY, "does not have the input's shape"),
    ("anomaly", autoencoder_program(), CLASSES, "0 .normal. or 1 .anomalous."),
    ("anomaly", autoencoder_program(), None, "0 .normal. or 1 .anomalous."),
    ("argmax", small_program(), None, "expected one of auto, classification"),
])
def test_a_task_that_cannot_be_measured_is_refused(task: str, program: Program, y: np.ndarray | None,
                                                    message: str) -> None:
    with pytest.raises(BadInputError, match=message):
        choose_task(task, program, y)
