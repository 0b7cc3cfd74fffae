"""Robustness evaluation of the deployed integer model (tinyrobust.robustness).

Trains a small stochastic-ternary QKeras model on sklearn's 8×8 digits, then runs every attack
through the CLI glue with the bit-exact reference as the target runner, and again with a runner
that corrupts one output byte, which the confirmation step must catch.
"""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest

import tinyrobust.converter.frontend  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
from tinyrobust.cli import main
from tinyrobust.dataset import Dataset
from tinyrobust.workflows.robustness.command import finish
from tinyrobust.workflows.robustness.evaluation import evaluate_robustness
from tinyrobust.workflows.robustness.report import plot_attack_png, table_markdown
from tinyrobust.workflows.robustness.results import ATTACKS, RobustnessResult

LIMIT = 40
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _train_digits_model(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    import tf_keras as keras
    from qkeras import QActivation, QConv2D, QDense, quantized_relu, stochastic_ternary, ternary
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[..., None]  # 8×8×1 in [0, 1]
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.layers.InputLayer((8, 8, 1)),
            QConv2D(8, 3, kernel_quantizer=ternary(alpha=1.0), name="conv"),
            QActivation(quantized_relu(4, 2), name="act"),
            keras.layers.Flatten(name="flatten"),
            QDense(10, kernel_quantizer=stochastic_ternary(alpha="auto_po2"), name="dense"),
            keras.layers.Activation("softmax", name="softmax"),
        ]
    )
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    model.fit(x[:1400], y[:1400], epochs=8, batch_size=64, verbose=0)
    model.save(path)
    return x[:1400], y[:1400], x[1400:], y[1400:]


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("robustness")
    x_tr, y_tr, x_te, y_te = _train_digits_model(d / "digits.h5")
    np.savez(d / "test.npz", x=x_te, y=y_te)
    np.savez(d / "cal.npz", x=x_tr[:300], y=y_tr[:300])
    return {"dir": d, "model": d / "digits.h5", "data": d / "test.npz", "cal": d / "cal.npz"}


def _flip_first_byte(model: object, _args: object):  # a deliberately wrong target
    def run(q: np.ndarray) -> np.ndarray:
        out = model.reference.run(q).copy()  # type: ignore[attr-defined]
        out[:, 0] = ~out[:, 0]
        return out

    return run


@pytest.fixture(scope="module")
def full_run(digits: dict[str, Path]) -> dict:
    json_path, html_path = digits["dir"] / "rob.json", digits["dir"] / "rob.html"
    code = main(
        [
            "robustness",
            str(digits["model"]),
            "--data",
            str(digits["data"]),
            "--calibration",
            str(digits["cal"]),
            "--limit",
            str(LIMIT),
            "--seed",
            "0",
            "--json",
            str(json_path),
            "--html",
            str(html_path),
            "--no-progress",
        ]
    )
    return {"code": code, "json": json.loads(json_path.read_text()), "html": html_path}


@pytest.mark.slow
def test_full_run_reports_every_field(full_run: dict) -> None:
    assert full_run["code"] == 0
    j = full_run["json"]
    for key in (
        "schema",
        "model",
        "target",
        "samples",
        "seed",
        "eps",
        "main_eps",
        "input_grid",
        "clean",
        "attacks",
        "confirmations",
        "target_agreement",
        "masking_checks",
        "table",
        "budget",
    ):
        assert key in j, key
    assert j["samples"] == LIMIT
    assert j["eps"] == [0.0, 0.02, 0.05, 0.1, 0.2, 0.3]
    assert j["main_eps"] == 0.1
    assert j["input_grid"]["range"] == [0.0, 1.0]
    assert set(j["attacks"]) == set(ATTACKS)
    for name in ("fgsm", "pgd"):
        assert [p["eps"] for p in j["attacks"][name]["points"]] == j["eps"]
    for name, entry in j["attacks"].items():
        for p in entry["points"] + ([entry["unbounded"]] if "unbounded" in entry else []):
            assert set(p["accuracy"]) == {"keras", "reference", "target"}, name
            assert set(p["perturbation"]) == {"linf_mean", "linf_max", "l2_mean", "l2_max"}, name
            assert p["target_reference_exact"] == LIMIT, name  # the reference is the runner here
    assert "unbounded" in j["attacks"]["cw"] and "unbounded" in j["attacks"]["boundary"]
    assert [m["check"] for m in j["masking_checks"]] == [
        "black-box stronger than white-box",
        "PGD accuracy does not approach 0 at the largest ε",
        "FGSM stronger than PGD",
    ]
    assert all(m["evaluated"] and isinstance(m["flagged"], bool) and m["detail"] for m in j["masking_checks"])
    t = j["table"]
    assert t["columns"] == ["clean", "fgsm", "pgd", "square", "boundary", "cw"]
    assert all(isinstance(t["rows"][r][c], float) for r in ("keras", "target") for c in t["columns"])
    print("\n" + json.dumps(t, indent=1))


@pytest.mark.slow
def test_accuracy_and_attack_strength(full_run: dict) -> None:
    j = full_run["json"]
    clean = j["clean"]["accuracy"]
    assert clean["target"] > 0.8 and clean["keras"] > 0.8
    pgd = j["attacks"]["pgd"]["points"]
    assert pgd[0]["eps"] == 0.0 and pgd[0]["accuracy"]["target"] == clean["target"]
    assert pgd[-1]["accuracy"]["target"] < clean["target"]
    assert pgd[-1]["accuracy"]["keras"] < clean["keras"]
    # The effective perturbation respects ε up to one grid step of rounding.
    step = j["input_grid"]["scale"]
    for p in pgd + j["attacks"]["fgsm"]["points"] + j["attacks"]["square"]["points"]:
        assert p["perturbation"]["linf_max"] <= p["eps"] + step + 1e-9
    assert pgd[-1]["perturbation"]["linf_max"] > 0.25


@pytest.mark.slow
def test_black_box_examples_confirmed_on_target(full_run: dict) -> None:
    conf = full_run["json"]["confirmations"]
    assert conf["all_confirmed"] is True
    assert set(conf["per_attack"]) == {"square", "boundary"}
    for c in conf["per_attack"].values():
        assert c["examples"] == LIMIT
        assert c["bytes_identical"] == LIMIT
        assert c["flips_confirmed"] == c["reference_flips"]
        assert c["unconfirmed_indices"] == []
    # Boundary ends on an adversarial for every sample it attacked (unbounded), so flips exist to confirm.
    assert conf["per_attack"]["boundary"]["reference_flips"] > 0
    assert full_run["json"]["target_agreement"]["mismatches"] == 0


@pytest.mark.slow
def test_html_has_embedded_plots(full_run: dict) -> None:
    html = full_run["html"].read_text()
    pngs = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", html)
    assert len(pngs) == 5  # overview, fgsm, pgd, square, boundary
    for b64 in pngs:
        assert base64.b64decode(b64).startswith(PNG_MAGIC)
    assert "Gradient-masking checks" in html
    assert "equal the reference bit for bit" in html and "MISMATCH" not in html


def _evaluate(digits: dict[str, Path], run_target_factory, **kw) -> RobustnessResult:
    from tinyrobust.converter.pipeline import convert

    model = convert(digits["model"], calibration=Dataset.load(digits["cal"]))
    return evaluate_robustness(
        model, Dataset.load(digits["data"]), run_target=run_target_factory(model, None), progress=False, **kw
    )


@pytest.mark.slow
def test_wrong_target_is_reported_unconfirmed(digits: dict[str, Path], tmp_path: Path) -> None:
    res = _evaluate(digits, _flip_first_byte, attacks=("fgsm", "square"), eps=[0.1], limit=12, seed=0)
    assert not res.all_confirmed
    (c,) = res.confirmations
    assert c.attack == "square" and c.bytes_identical == 0 and len(c.unconfirmed) == 12
    assert res.target_mismatches == res.target_inputs == 3 * 12  # clean + fgsm ε=0.1 + square
    assert res.to_json()["confirmations"]["all_confirmed"] is False
    # The command's ending: exit 1, a loud message, and the JSON still written.
    assert finish(res, tmp_path / "w.json", None) == 1
    assert json.loads((tmp_path / "w.json").read_text())["confirmations"]["all_confirmed"] is False


@pytest.mark.slow
def test_deterministic_with_seed(digits: dict[str, Path]) -> None:
    def ref(model, _args):
        return model.reference.run

    a = _evaluate(digits, ref, attacks=("pgd", "square"), eps=[0.1], limit=8, seed=3).to_json()
    b = _evaluate(digits, ref, attacks=("pgd", "square"), eps=[0.1], limit=8, seed=3).to_json()
    assert a == b


@pytest.mark.slow
def test_plot_png_and_markdown(digits: dict[str, Path]) -> None:
    res = _evaluate(digits, lambda m, _a: m.reference.run, attacks=("fgsm",), eps=[0.05, 0.2], limit=10, seed=0)
    png = plot_attack_png(res, "fgsm")
    assert png.startswith(PNG_MAGIC) and len(png) > 1000
    import matplotlib.image

    img = matplotlib.image.imread(io.BytesIO(png), format="png")
    assert img.shape[0] > 100 and img.shape[1] > 100
    md = table_markdown(res)
    assert md.splitlines()[0].startswith("| Model | Clean Acc(%) | FGSM ε=0.05 Acc(%) |")
    assert len([line for line in md.splitlines() if line.startswith("| ")]) == 3


@pytest.mark.slow
def test_bad_input_exits_2(digits: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros((4, 28, 28, 1), np.float32), y=np.zeros(4, np.int64))
    argv = ["robustness", str(digits["model"]), "--data", str(bad), "--calibration", str(digits["cal"]),
            "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "shape" in err[0]
    assert main(["robustness", str(tmp_path / "missing.h5"), "--data", str(digits["data"]), "--no-progress"]) == 2
    with pytest.raises(SystemExit) as exc:
        main(["robustness", str(digits["model"]), "--data", str(digits["data"]), "--attacks", "fgsm,zoo"])
    assert exc.value.code == 2


@pytest.mark.parametrize("shape", [(4, 4, 1), (49, 10, 1), (8, 8, 1), (32, 32, 3)])
def test_square_p_init_fits_small_and_narrow_inputs(shape: tuple[int, int, int]) -> None:
    """ART's default p_init = 0.8 draws a tile wider than 4×4 or 49×10 inputs; ours always fits."""
    from art.attacks.evasion import SquareAttack
    from art.estimators.classification.blackbox import BlackBoxClassifierNeuralNetwork

    from tinyrobust.workflows.robustness.evaluation import _craft_square, _square_p_init
    from tinyrobust.workflows.robustness.results import AttackBudget

    h, w, c = shape
    side = round(float(np.sqrt(_square_p_init(h, w) * h * w)))
    assert 1 <= side <= min(h, w) - 1
    expected = {(4, 4): 9 / 16, (49, 10): 81 / 490, (8, 8): 49 / 64, (32, 32): 0.8}[(h, w)]
    assert _square_p_init(h, w) == pytest.approx(expected)
    weights = np.random.default_rng(1).normal(size=(h * w * c, 3))

    def make(input_shape: tuple[int, ...]) -> BlackBoxClassifierNeuralNetwork:
        return BlackBoxClassifierNeuralNetwork(
            lambda xb: xb.reshape(len(xb), -1) @ weights,
            input_shape=input_shape,
            nb_classes=3,
            channels_first=False,
            clip_values=(0.0, 1.0),
        )

    x = np.random.default_rng(2).uniform(0.3, 0.7, size=(4, h, w, c)).astype(np.float32)
    y = (x.reshape(4, -1) @ weights).argmax(axis=1)
    crafted = _craft_square(make, x, y, 0.1, AttackBudget(square_max_iter=20), seed=0)
    assert crafted.x_adv.shape == x.shape
    assert np.abs(crafted.x_adv - x).max() <= 0.1 + 1e-6
    if round(float(np.sqrt(0.8 * h * w))) > min(h, w) - 1:  # where ART's default cannot place its tile
        default = SquareAttack(make((h, w, c)), norm=np.inf, eps=0.1, max_iter=20, verbose=False)
        with pytest.raises(ValueError):
            default.generate(x=x, y=y)


@pytest.mark.slow
@pytest.mark.qemu
def test_black_box_examples_confirmed_on_qemu(digits: dict[str, Path], tmp_path: Path) -> None:
    """The real thing: adversarial examples found on the reference replay bit-exactly in QEMU."""
    from tinyrobust.converter.pipeline import convert
    from tinyrobust.firmware.project import load_export
    from tinyrobust.targets.factory import open_target
    from tinyrobust.workflows.export import export_program

    model = convert(digits["model"], calibration=Dataset.load(digits["cal"]))
    export_program(model.program, "nucleo_h743zi", tmp_path / "export", model_path=digits["model"])
    with open_target("qemu", load_export(tmp_path / "export")) as target:
        res = evaluate_robustness(
            model,
            Dataset.load(digits["data"]),
            run_target=lambda q: target.infer_batch(q)[0],
            attacks=("fgsm", "square", "boundary"),
            eps=[0.1],
            limit=20,
            seed=0,
            progress=False,
            target_name="qemu",
        )
    assert res.target_mismatches == 0 and res.target_inputs == 4 * 20
    assert res.all_confirmed
    assert {c.attack for c in res.confirmations} == {"square", "boundary"}
    assert res.point("square", 0.1).target_accuracy < res.clean.target_accuracy  # type: ignore[union-attr]
