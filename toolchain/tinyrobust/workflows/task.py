"""What `validate` measures a model by: `--task auto|classification|regression|anomaly`.

- classification: accuracy by argmax of the output, labels checked as classes, top-1 agreement with Keras.
- regression: the deployed output against Keras's in output grid steps and SNR (workflows/output_error.py);
  labels are not read.
- anomaly: regression, plus the anomaly score (mean squared reconstruction error between input and output)
  ranked against labels 0 (normal) / 1 (anomalous): AUC of Keras's and of the deployed score, and their
  rank agreement. Needs an output of the input's shape (an autoencoder).

`auto` decides, first rule that applies:
1. the conversion dropped a final softmax → classification;
2. the output has the input's shape (an autoencoder) → anomaly when y holds only 0/1 labels, else regression;
3. y holds labels and the output has more than one value → classification (the labels are then checked as
   classes: one beyond the outputs is refused, as a mislabelled dataset);
4. otherwise (no labels, or a single output) → regression.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..converter.passes.structure import dropped_final_softmax
from ..converter.program import Program
from ..errors import BadInputError

TASKS = ("auto", "classification", "regression", "anomaly")
TASK_HELP = ("what the model is measured by. classification: accuracy by argmax, labels are classes; regression: "
             "output error vs Keras in output grid steps and SNR; anomaly: regression plus the AUC of the "
             "reconstruction error (mean squared, input vs output) against y (1 = anomalous) for Keras and the "
             "deployed model, and their rank agreement. auto: classification if the model ends in a softmax; else "
             "anomaly/regression if the output has the input's shape (anomaly when y is 0/1); else classification "
             "if y holds labels and the output has more than one value; else regression")


@dataclass(frozen=True)
class TaskChoice:
    kind: str  # classification | regression | anomaly
    requested: str  # what --task said
    reason: str

    def describe(self) -> str:
        how = "chosen by --task auto" if self.requested == "auto" else "as --task says"
        return f"task: {self.kind} ({how}: {self.reason})"

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "requested": self.requested, "reason": self.reason}


def _shape(shape: tuple[int, ...]) -> str:
    return "×".join(map(str, shape))


def _binary(y: np.ndarray | None) -> bool:
    return y is not None and len(y) > 0 and bool(np.all((y == 0) | (y == 1)))


def choose_task(requested: str, program: Program, y: np.ndarray | None) -> TaskChoice:
    """The task for this model and these labels, and why; refuses a task that cannot be measured."""
    if requested not in TASKS:
        raise BadInputError(f"--task {requested}: expected one of {', '.join(TASKS)}")
    softmax = dropped_final_softmax(program.notes)
    # Several inputs or outputs: output 0 is what a classifier is scored by (validate's rule), and
    # only a one-input, one-output model can be an autoencoder.
    in_shape = tuple(program.tensor(program.inputs[0]).shape)
    out_shape = tuple(program.tensor(program.outputs[0]).shape)
    outputs = program.tensor(program.outputs[0]).elements
    autoencoder = len(program.inputs) == len(program.outputs) == 1 and in_shape == out_shape
    if requested == "classification":
        return TaskChoice("classification", requested, f"argmax of the {outputs} outputs")
    if requested in ("regression", "anomaly") and softmax is not None:
        # Keras's output is softmax probabilities, the deployed one the logits below them: not comparable.
        raise BadInputError(f"--task {requested}: the model ends in the softmax '{softmax}', which is not deployed "
                            "(its output is logits), so its output cannot be compared with Keras's: use "
                            "--task classification")
    if requested == "regression":
        return TaskChoice("regression", requested, f"output {_shape(out_shape)} compared with Keras's")
    if requested == "anomaly":
        if not autoencoder:
            raise BadInputError(f"--task anomaly: the score is the reconstruction error between input and output, "
                                f"but the output ({_shape(out_shape)}) does not have the input's shape "
                                f"({_shape(in_shape)})")
        if not _binary(y):
            raise BadInputError("--task anomaly: --data needs y of anomaly labels, 0 (normal) or 1 (anomalous)")
        return TaskChoice("anomaly", requested, "reconstruction error ranked against y (1 = anomalous)")
    if softmax is not None:
        return TaskChoice("classification", requested, f"the model ends in the softmax '{softmax}'")
    if autoencoder:
        if _binary(y):
            return TaskChoice("anomaly", requested, f"the output has the input's shape ({_shape(in_shape)}): an "
                                                    "autoencoder, and y holds 0/1 anomaly labels")
        why = "no labels" if y is None or not len(y) else "y holds labels other than 0/1 (not used)"
        return TaskChoice("regression", requested,
                          f"the output has the input's shape ({_shape(in_shape)}): an autoencoder; {why}")
    if y is not None and len(y) and outputs > 1:
        # Labels are integers, so they are classes (checked next: a label beyond the outputs is refused).
        return TaskChoice("classification", requested, f"y holds labels, taken as classes of the {outputs} outputs")
    why = "no labels" if y is None or not len(y) else "a single output is no class vector (y not used)"
    return TaskChoice("regression", requested, f"no softmax, output {_shape(out_shape)}, {why}")
