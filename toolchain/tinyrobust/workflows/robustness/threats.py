"""The vocabulary of a robustness evaluation: threat models, attacks, norms, and what each means in
plain words (the report prints these; no paper jargon).

A row of the report is one attack under one threat model in one norm; its points are ε values
(in the units of the dataset's x) plus, for some rows, an unbounded point.
"""

from __future__ import annotations

from dataclasses import dataclass

# ------------------------------------------------------------------------------------- threat models
STE = "ste"
BPDA = "bpda"
TRANSFER = "transfer"
BLACK_BOX = "black-box"
NOISE = "noise"
GRADIENT_THREATS = (STE, BPDA, TRANSFER)  # the threat models a gradient attack can run under
THREATS = (*GRADIENT_THREATS, BLACK_BOX, NOISE)

THREAT_TITLES = {
    STE: "STE surrogate",
    BPDA: "BPDA on the deployed model",
    TRANSFER: "transfer from a float model",
    BLACK_BOX: "black-box on the deployed model",
    NOISE: "random noise",
}
THREAT_WORDS = {
    STE: "The attacker knows the trained QKeras model and follows its gradients, where every rounding step "
         "is treated as if it let gradients through unchanged. The examples it finds are then sent to the "
         "deployed integer model.",
    BPDA: "The attacker runs the deployed integer model itself (bit-identical to the device) to see what it "
          "answers, and borrows the QKeras model's gradients to decide where to push next. It stops when "
          "the deployed model is fooled.",
    TRANSFER: "The attacker has a separate full-precision model (given with --source), attacks that one with its "
              "own gradients, and hopes the examples also fool the deployed model.",
    BLACK_BOX: "The attacker can only send inputs to the deployed model and read its answers, as through the "
               "device's serial port; no gradients, no weights.",
    NOISE: "No attacker: random changes of the same size. An attack that does worse than this is not working.",
}

# ------------------------------------------------------------------------------------------ attacks
FGSM, PGD, APGD_CE, APGD_DLR, CW = "fgsm", "pgd", "apgd-ce", "apgd-dlr", "cw"
SQUARE, HOPSKIPJUMP, BOUNDARY, ZOO = "square", "hopskipjump", "boundary", "zoo"
RANDOM_NOISE = "noise"
GRADIENT_ATTACKS = (FGSM, PGD, APGD_CE, APGD_DLR, CW)
BLACK_BOX_ATTACKS = (SQUARE, HOPSKIPJUMP, BOUNDARY, ZOO)
ATTACKS = (*GRADIENT_ATTACKS, *BLACK_BOX_ATTACKS, RANDOM_NOISE)
# Minimum-perturbation attacks: no ε while crafting; each ε point evaluates the example projected
# into that ε-ball (after quantisation), the unbounded point the example itself.
MINIMUM_PERTURBATION = (CW, HOPSKIPJUMP, BOUNDARY, ZOO)

ATTACK_TITLES = {
    FGSM: "FGSM", PGD: "PGD", APGD_CE: "APGD-CE", APGD_DLR: "APGD-DLR", CW: "C&W-L2",
    SQUARE: "Square", HOPSKIPJUMP: "HopSkipJump", BOUNDARY: "Boundary", ZOO: "ZOO", RANDOM_NOISE: "noise",
}
ATTACK_WORDS = {
    FGSM: "one step of size ε in the direction that increases the loss",
    PGD: "many small steps that increase the loss, each pulled back into the ε-ball",
    APGD_CE: "PGD that tunes its own step size (cross-entropy loss), with restarts",
    APGD_DLR: "PGD that tunes its own step size, on a loss that ignores how confident the model is",
    CW: "searches for the smallest change (L2) that flips the answer",
    SQUARE: "tries random square patches of size ε and keeps those that lower the model's margin",
    HOPSKIPJUMP: "starts from an input that is already misclassified and walks it towards the original, "
                 "estimating the boundary from answers only",
    BOUNDARY: "starts from an input that is already misclassified and shrinks the difference by random walks "
              "along the boundary",
    ZOO: "estimates gradients by nudging one input value at a time and reading the answers",
    RANDOM_NOISE: "adds random noise whose size is exactly ε",
}

# ------------------------------------------------------------------------------------------- norms
NORMS = ("linf", "l2", "l1")
NORM_ORDER = {"linf": float("inf"), "l2": 2, "l1": 1}
NORM_WORDS = {
    "linf": "no single input value changes by more than ε",
    "l2": "the Euclidean length of the change is at most ε",
    "l1": "the changes of all input values add up to at most ε",
}
# The norms each attack supports (ART); a minimum-perturbation attack is crafted in its own norm and
# evaluated in any.
CRAFT_NORMS = {
    FGSM: NORMS, PGD: NORMS, APGD_CE: NORMS, APGD_DLR: NORMS, CW: ("l2",),
    SQUARE: ("linf", "l2"), HOPSKIPJUMP: ("linf", "l2"), BOUNDARY: ("l2",), ZOO: ("l2",), RANDOM_NOISE: NORMS,
}
# Threat models a gradient attack runs under. C&W needs per-class gradients, which the BPDA
# estimator does not provide (its gradient is of the loss only).
ATTACK_THREATS = {
    FGSM: GRADIENT_THREATS, PGD: GRADIENT_THREATS, APGD_CE: GRADIENT_THREATS, APGD_DLR: GRADIENT_THREATS,
    CW: (STE, TRANSFER),
}


@dataclass(frozen=True)
class RowKey:
    """One row: an attack under a threat model, in a norm."""

    threat: str
    attack: str
    norm: str

    @property
    def id(self) -> str:
        return f"{self.threat}/{self.attack}/{self.norm}"

    @property
    def title(self) -> str:
        return f"{ATTACK_TITLES[self.attack]} ({THREAT_TITLES[self.threat]}, {self.norm.upper()})"

    @property
    def minimum_perturbation(self) -> bool:
        return self.attack in MINIMUM_PERTURBATION

    @property
    def craft_norm(self) -> str:
        """The norm the attack itself works in (a minimum-perturbation attack may differ from the row's)."""
        return self.norm if self.norm in CRAFT_NORMS[self.attack] else CRAFT_NORMS[self.attack][0]

    def to_json(self) -> dict[str, str]:
        return {"id": self.id, "threat_model": self.threat, "attack": self.attack, "norm": self.norm}


def threat_of(attack: str, gradient_threats: tuple[str, ...]) -> tuple[str, ...]:
    """The threat models `attack` runs under, given the gradient threat models selected."""
    if attack in BLACK_BOX_ATTACKS:
        return (BLACK_BOX,)
    if attack == RANDOM_NOISE:
        return (NOISE,)
    return tuple(t for t in gradient_threats if t in ATTACK_THREATS[attack])


def row_keys(attacks: tuple[str, ...], gradient_threats: tuple[str, ...], norms: tuple[str, ...]) -> list[RowKey]:
    """Every row of an evaluation, in a stable order: norm, then threat model, then attack. An attack
    that cannot work in a norm (ε-bounded and not supported by ART in it) is left out."""
    rows = []
    for norm in norms:
        for threat in THREATS:
            for attack in ATTACKS:
                if attack not in attacks or threat not in threat_of(attack, gradient_threats):
                    continue
                if attack not in MINIMUM_PERTURBATION and norm not in CRAFT_NORMS[attack]:
                    continue
                rows.append(RowKey(threat, attack, norm))
    return rows
