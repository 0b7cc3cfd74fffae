"""Robustness evaluation of the deployed integer model (workflows/robustness/).

Models trained here on sklearn's 8×8 digits, in seconds: a normally trained float Keras CNN, a
ternary QKeras model, the same deployed program attacked through a QKeras copy whose
quantizers have no straight-through estimator (every input gradient is 0), and a QKeras model with a
1-bit input quantizer. Budgets and sample counts are small: these tests check behaviour, the
comparison at scale is examples/table_iv_digits.py.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import tinyrobust.converter.frontend  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
from tinyrobust import outputs
from tinyrobust.cli import main
from tinyrobust.converter.pipeline import DeployedModel, convert
from tinyrobust.dataset import Dataset
from tinyrobust.errors import DatasetError
from tinyrobust.outputs import OutputError
from tinyrobust.workflows.robustness import report as robustness_report
from tinyrobust.workflows.robustness.budget import AttackBudget
from tinyrobust.workflows.robustness.command import finish
from tinyrobust.workflows.robustness.crafting import UNBOUNDED, point_key, square_p_init
from tinyrobust.workflows.robustness.errors import EXIT_MASKING_FLAGGED
from tinyrobust.workflows.robustness.evaluation import ModelUnderTest, Settings, evaluate, evaluate_model
from tinyrobust.workflows.robustness.perturbation import InputGrid, norm_of, project, received
from tinyrobust.workflows.robustness.report import render_html, table_markdown, write_reports
from tinyrobust.workflows.robustness.results import Evaluation
from tinyrobust.workflows.robustness.shards import ModelSpec, ShardTask, register_context, run_shard
from tinyrobust.workflows.robustness.threats import ATTACKS, RowKey, row_keys

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SMALL = AttackBudget(iterations=10, queries=200, hsj_init_eval=10, hsj_max_eval=40, boundary_num_trial=5,
                     boundary_sample_size=5, zoo_nb_parallel=16, init_size=20, cw_binary_search_steps=2)
pytestmark = pytest.mark.slow


# ------------------------------------------------------------------------------------------ models
def _digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[..., None]
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(x))
    return x[order][:1400], y[order][:1400], x[order][1400:], y[order][1400:]


def _qkeras(use_ste: bool = True, input_bits: int | None = None):  # noqa: ANN202
    import tf_keras as keras
    from qkeras import QActivation, QConv2D, QDense, quantized_relu, ternary

    layers = [keras.layers.InputLayer((8, 8, 1))]
    if input_bits is not None:
        layers.append(QActivation(quantized_relu(input_bits, 0, use_ste=use_ste), name="in_q"))
    layers += [
        QConv2D(8, 3, kernel_quantizer=ternary(alpha=1.0), name="conv"),
        QActivation(quantized_relu(4, 2, use_ste=use_ste), name="act"),
        keras.layers.Flatten(name="flatten"),
        # ternary, not stochastic_ternary: its training draws random numbers, and these tests want the
        # same model (and so the same verdicts) on every run
        QDense(10, kernel_quantizer=ternary(alpha="auto_po2"), name="dense"),
        keras.layers.Activation("softmax", name="softmax"),
    ]
    return keras.Sequential(layers)


def _float_cnn():  # noqa: ANN202
    import tf_keras as keras

    return keras.Sequential([
        keras.layers.InputLayer((8, 8, 1)),
        keras.layers.Conv2D(8, 3, activation="relu", name="conv"),
        keras.layers.Flatten(name="flatten"),
        keras.layers.Dense(10, name="dense"),
        keras.layers.Activation("softmax", name="softmax"),
    ])


def _fit(build, x: np.ndarray, y: np.ndarray, path: Path, epochs: int = 8) -> Path:  # noqa: ANN001
    import tensorflow as tf
    import tf_keras as keras

    # Seeded before the weights are drawn, deterministic kernels: the same model on every run, so the
    # same verdicts.
    keras.utils.set_random_seed(0)
    tf.config.experimental.enable_op_determinism()
    model = build()
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=epochs, batch_size=64, verbose=0)
    model.save(path)
    return path


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("robustness")
    x_tr, y_tr, x_te, y_te = _digits()
    np.savez(d / "test.npz", x=x_te, y=y_te)
    np.savez(d / "cal.npz", x=x_tr[:300], y=y_tr[:300])
    return {"dir": d, "stq": _fit(_qkeras, x_tr, y_tr, d / "stq.h5"),
            "float": _fit(_float_cnn, x_tr, y_tr, d / "float.h5"),
            "in1": _fit(lambda: _qkeras(input_bits=1), x_tr, y_tr, d / "in1.h5"),
            "data": d / "test.npz", "cal": d / "cal.npz"}


def _deployed(digits: dict[str, Path], name: str) -> DeployedModel:
    return convert(digits[name], calibration=Dataset.load(digits["cal"]))


def _without_ste(deployed: DeployedModel) -> DeployedModel:
    """The same deployed program, attacked through a QKeras copy whose quantizers have no
    straight-through estimator (QKeras drops use_ste from a saved config, so the copy is built here)."""
    copy = _qkeras(use_ste=False)
    copy.set_weights(deployed.keras_model.get_weights())
    return DeployedModel(deployed.program, deployed.graph, copy)


def _mut(name: str, deployed: DeployedModel, source: object | None = None, run_target=None) -> ModelUnderTest:  # noqa: ANN001
    return ModelUnderTest(name, deployed, run_target, "reference" if run_target is None else "test-target",
                          None, 1234, model_sha256=None, source=source)


def _evaluate(mut: ModelUnderTest, digits: dict[str, Path], **kw) -> object:  # noqa: ANN003
    settings = Settings(**({"limit": 40, "budget": SMALL} | kw))
    return evaluate([mut], Dataset.load(digits["data"]), settings)


# ------------------------------------------------------------------------------------------ masking, end to end
@pytest.fixture(scope="module")
def without_ste(digits: dict[str, Path]) -> object:
    mut = _mut("stq-without-ste", _without_ste(_deployed(digits, "stq")))
    return _evaluate(mut, digits, attacks=("fgsm", "pgd", "square", "noise"), eps={"linf": (0.05, 0.1)})


def test_surrogate_without_gradients_is_flagged_and_the_black_box_row_exposes_it(without_ste) -> None:  # noqa: ANN001
    (m,) = without_ste.models
    flagged = {c.check for c in m.masking if c.flagged}
    assert {"zero input gradients", "perturbation used vs ε", "unbounded attack reaches ~0 %",
            "black-box stronger than white-box"} <= flagged
    assert all(g.zero_samples.value == 1.0 for g in m.gradients)  # every input gradient is 0
    fgsm = m.row("ste", "fgsm", "linf").point(0.1)
    assert fgsm.perturbation.max == 0.0 and fgsm.robust_accuracy.value == m.clean.value
    square = m.row("black-box", "square", "linf").point(0.1)
    assert square.robust_accuracy.value < m.row("ste", "pgd", "linf").point(0.1).robust_accuracy.value - 0.1
    assert m.row("bpda", "pgd", "linf").point(None).robust_accuracy.value > 0.5  # unbounded PGD cannot move
    assert without_ste.masking_flagged


def test_one_bit_input_quantizer_is_flagged(digits: dict[str, Path]) -> None:
    """Its grid has two levels (0 and 0.5): L2 ε of 0.5, 1, 1.5 let 1, 4 and 9 inputs flip. The
    input quantizer's estimator passes no gradient at 0, where most inputs sit."""
    res = _evaluate(_mut("in1", _deployed(digits, "in1")), digits, attacks=("fgsm", "pgd", "square", "noise"),
                    norms=("l2",), eps={"l2": (0.5, 1.0, 1.5)})
    (m,) = res.models
    assert m.input_grid["scale"] == 0.5 and m.input_grid["range"] == [0.0, 0.5]
    zero = next(c for c in m.masking if c.check == "zero input gradients")
    assert zero.flagged
    assert all(g.zero_components > 0.5 for g in m.gradients)
    assert res.masking_flagged


def test_normal_model_with_the_readme_eps_is_not_flagged(digits: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "normal.json"
    code = main(["robustness", str(digits["float"]), "--data", str(digits["data"]), "--calibration",
                 str(digits["cal"]), "--eps", "0.05,0.1", "--limit", "60", "--iterations", "10", "--queries", "200",
                 "--jobs", "1", "--json", str(out), "--no-progress", "--strict"])
    report = json.loads(out.read_text())
    (m,) = report["models"]
    verdicts = {c["check"]: c["verdict"] for c in m["masking_checks"]}
    assert code == 0, verdicts
    assert not report["masking_flagged"] and set(verdicts.values()) <= {"passed", "not evaluated"}
    assert sum(v == "passed" for v in verdicts.values()) >= 6, verdicts
    assert [r["id"] for r in m["rows"]] == ["ste/fgsm/linf", "ste/pgd/linf", "ste/apgd-ce/linf", "bpda/fgsm/linf",
                                            "bpda/pgd/linf", "bpda/apgd-ce/linf", "black-box/square/linf",
                                            "noise/noise/linf"]
    assert report["eps"] == {"linf": [0.05, 0.1]}


def test_strict_exits_4_only_when_flagged(without_ste, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:  # noqa: ANN001
    assert finish(without_ste, tmp_path / "r.json", None, strict=False) == 0
    assert finish(without_ste, tmp_path / "r.json", None, strict=True) == EXIT_MASKING_FLAGGED
    assert "gradient-masking check FLAGGED" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------ ε in the data domain
@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
def test_every_example_sent_to_the_target_is_within_eps(digits: dict[str, Path], norm: str) -> None:
    """The int8 inputs a shard hands to the target, for every row and ε, received as the device gets
    them (after quantisation), are within ε in the row's norm; ε values off the grid on purpose."""
    model = _deployed(digits, "stq")
    data = Dataset.load(digits["data"]).limit(24)
    eps = {"linf": (0.021, 0.1), "l2": (0.13, 0.6), "l1": (0.7, 2.5)}[norm]
    attacks = ("fgsm", "pgd", "apgd-ce", "noise", "cw") + (("square", "hopskipjump") if norm != "l1" else ())
    rows = tuple(row_keys(attacks, ("ste", "bpda"), (norm,)))
    spec = ModelSpec(Path("<test>"), None, (0.0, 1.0), "", model.program.sha256().hex())
    register_context(spec, model, None)
    result = run_shard(ShardTask(spec, 0, data.x, data.y, rows, {norm: eps}, SMALL, seed=1))
    grid = InputGrid.of(model.program.input_quantization)
    q_clean = grid.quantize(data.x)
    moved = 0
    for row in rows:
        for e in eps:
            q = result.rows[row.id].adversarial[point_key(e)]
            size = norm_of(received(q, q_clean, grid), norm)
            assert size.max() <= e, (row.id, e, size.max())
            moved += int((size > 0).sum())
    assert moved > len(rows) * len(data) // 2  # the attacks did perturb, within ε


@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
def test_projection_keeps_the_received_change_within_eps(norm: str) -> None:
    """The issue's cases: ε = 0.02 on a 1/255 grid (was 0.0233 after rounding) and ε = 0.01 on a
    [0, 0.5] grid (was 0.5). Projection moves values only towards clean, stays on the grid, and keeps
    most of the allowed size."""
    rng = np.random.default_rng(3)
    for grid, eps in ((InputGrid(1 / 255, -128, -128, 127), 0.02), (InputGrid(0.5 / 255, -128, -128, 127), 0.01),
                      (InputGrid(0.5, -128, -128, -127), 0.01)):
        x = rng.uniform(grid.lo, grid.hi, (200, 64))
        q_clean = grid.quantize(x)
        scale = {"linf": 1.0, "l2": 8.0, "l1": 64.0}[norm]
        x_adv = np.clip(x + rng.uniform(-3, 3, x.shape) * eps * scale / np.sqrt(64 if norm != "linf" else 1),
                        grid.lo, grid.hi)
        q = project(grid.quantize(x_adv), q_clean, grid, eps * scale, norm)
        size = norm_of(received(q, q_clean, grid), norm)
        assert size.max() <= eps * scale
        toward = (q.astype(int) - q_clean) * (grid.quantize(x_adv).astype(int) - q_clean)
        assert toward.min() >= 0  # never past clean, never away from the attack's direction
        if grid.steps_within(eps) >= 2:
            assert size.mean() > 0.5 * eps * scale
    coarse = InputGrid(0.5, -128, -128, -127)
    assert coarse.steps_within(0.01) == 0 and coarse.steps_within(0.5) == 1 and coarse.steps_within(0.99) == 1


# ------------------------------------------------------------------------------------------ reproducibility
def test_same_seed_gives_byte_identical_json_with_every_attack(digits: dict[str, Path], tmp_path: Path) -> None:
    """Every attack and threat model (transfer from the float model), twice in this process, then once
    with --jobs 2 over two shards in spawned workers: identical JSON apart from the timings."""
    argv = ["robustness", str(digits["stq"]), "--data", str(digits["data"]), "--calibration", str(digits["cal"]),
            "--attacks", ",".join(ATTACKS), "--source", str(digits["float"]), "--eps", "0.05,0.1", "--limit", "10",
            "--iterations", "4", "--queries", "60", "--budget", "hsj_init_eval=8", "--budget", "hsj_max_eval=20",
            "--budget", "boundary_sample_size=4", "--budget", "boundary_num_trial=3", "--budget", "zoo_nb_parallel=8",
            "--budget", "init_size=10", "--budget", "cw_binary_search_steps=1", "--shard-size", "5", "--seed", "7",
            "--no-progress"]
    texts = []
    for i, jobs in enumerate(("1", "1", "2")):
        out = tmp_path / f"r{i}.json"
        assert main([*argv, "--jobs", jobs, "--json", str(out)]) == 0
        report = json.loads(out.read_text())
        assert report["timings"]["seconds"] > 0
        report.pop("timings")
        texts.append(json.dumps(report, indent=1))
    assert texts[0] == texts[1] == texts[2]
    report = json.loads(texts[0])
    (m,) = report["models"]
    assert {r["attack"] for r in m["rows"]} == set(ATTACKS)
    assert {r["threat_model"] for r in m["rows"]} == {"ste", "bpda", "transfer", "black-box", "noise"}
    for r in m["rows"]:
        if r["threat_model"] == "black-box":
            assert r["queries"]["total"] > 0 and r["confirmation"]["all_confirmed"]
    assert report["budget"]["queries"] == 60 and report["budget"]["hsj_init_eval"] == 8


# ------------------------------------------------------------------------------------------ statistics and reports
def test_definitions_intervals_and_folds(digits: dict[str, Path]) -> None:
    res = _evaluate(_mut("stq", _deployed(digits, "stq")), digits, attacks=("pgd", "noise"), eps={"linf": (0.1,)},
                    folds=4)
    (m,) = res.models
    p = m.row("ste", "pgd", "linf").point(0.1)
    n = m.samples
    assert p.robust_accuracy.n == n and p.robust_accuracy.k <= m.clean.k  # robust ⊆ clean-correct
    assert p.attack_success.n == m.clean.k
    assert p.attack_success.k == m.clean.k - p.robust_accuracy.k
    lo, hi = p.robust_accuracy.interval
    assert 0 <= lo < p.robust_accuracy.value < hi <= 1
    folds = p.folds.to_json()
    assert len(folds["per_fold"]) == 4 and folds["mean"] == pytest.approx(p.robust_accuracy.value)
    assert m.row("ste", "pgd", "linf").point(None) is not None  # PGD's unbounded point


def test_comparison_table_and_reports(digits: dict[str, Path], tmp_path: Path) -> None:
    """Two models on the same samples: one table (rows = models, columns = attack × threat × ε), every
    cell with an interval; the HTML states each threat model in plain words, the version and hashes."""
    out, page, md = tmp_path / "c.json", tmp_path / "c.html", tmp_path / "c.md"
    code = main(["robustness", str(digits["float"]), str(digits["stq"]), "--data", str(digits["data"]),
                 "--calibration", str(digits["cal"]), "--attacks", "fgsm,square,noise", "--eps", "0.1",
                 "--limit", "20", "--queries", "50", "--jobs", "1", "--json", str(out), "--html", str(page),
                 "--markdown", str(md), "--no-progress"])
    assert code == 0
    report = json.loads(out.read_text())
    table = report["table"]
    assert [r["model"] for r in table["rows"]] == ["float", "stq"]
    ids = [c["id"] for c in table["columns"]]
    assert ids == ["ste/fgsm/linf@0.1", "bpda/fgsm/linf@0.1", "black-box/square/linf@0.1", "noise/noise/linf@0.1"]
    for row in table["rows"]:
        assert set(row["cells"]) == set(ids) and row["flash_bytes"] > 0
        for cell in row["cells"].values():
            lo, hi = cell["ci95"]
            assert lo <= cell["value"] <= hi
    assert [m["model_sha256"] for m in report["models"]] == [
        __import__("hashlib").sha256(digits[k].read_bytes()).hexdigest() for k in ("float", "stq")]
    html = page.read_text()
    assert report["tool_version"] in html and report["models"][1]["model_sha256"] in html
    assert "can only send inputs to the deployed model and read its answers" in html  # black-box in plain words
    assert "gradients to decide where to push next" in html  # BPDA in plain words
    pngs = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", html)
    assert len(pngs) == 2 and all(base64.b64decode(b).startswith(PNG_MAGIC) for b in pngs)
    lines = md.read_text().splitlines()
    assert lines[0].startswith("| Model | Clean % | FGSM (STE) ε=0.1 % |")
    assert re.search(r"\| float \| \d+\.\d \[\d+\.\d–\d+\.\d\] \|", lines[2])


def test_wrong_target_is_reported_unconfirmed(digits: dict[str, Path], tmp_path: Path) -> None:
    model = _deployed(digits, "stq")

    def flip_first_byte(q: np.ndarray) -> tuple[np.ndarray, None]:
        out = model.reference.run(q).copy()
        out[:, 0] = ~out[:, 0]
        return out, None

    res = _evaluate(_mut("stq", model, run_target=flip_first_byte), digits, attacks=("fgsm", "square"),
                    eps={"linf": (0.1,)}, limit=12)
    (m,) = res.models
    assert m.target_mismatches == m.target_inputs > 0
    conf = m.row("black-box", "square", "linf").confirmation
    assert not conf.all_confirmed and conf.bytes_identical == 0 and len(conf.unconfirmed) == 12
    assert finish(res, tmp_path / "w.json", None) == 1
    assert json.loads((tmp_path / "w.json").read_text())["all_confirmed"] is False


def test_bad_input_exits_2(digits: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros((4, 28, 28, 1), np.float32), y=np.zeros(4, np.int64))
    base = ["--calibration", str(digits["cal"]), "--no-progress", "--jobs", "1"]
    assert main(["robustness", str(digits["stq"]), "--data", str(bad), *base]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "shape" in err[0]
    for extra in (["--budget", "warp_speed=9"], ["--threat-models", "transfer"], ["--norm", "linf,l2", "--eps", "0.1"],
                  ["--budget", "queries=-3"]):
        assert main(["robustness", str(digits["stq"]), "--data", str(digits["data"]), *base, *extra]) == 2, extra
        assert len(capsys.readouterr().err.strip().splitlines()) == 1
    with pytest.raises(SystemExit) as exc:
        main(["robustness", str(digits["stq"]), "--data", str(digits["data"]), "--attacks", "fgsm,warp"])
    assert exc.value.code == 2


@pytest.mark.parametrize(("label", "words"), [(10, "not classes of this model"), (-1, "no class index")])
def test_labels_that_are_no_class_exit_2_before_any_attack(digits: dict[str, Path], tmp_path: Path,
                                                           capsys: pytest.CaptureFixture, label: int,
                                                           words: str) -> None:
    """A label at or above the class count (or negative) would count as wrong under every attack and
    quietly lower every number: one line, exit 2, no report written."""
    data = Dataset.load(digits["data"]).limit(6)
    y = data.y.copy()
    y[3] = label
    bad = tmp_path / "labels.npz"
    np.savez(bad, x=data.x, y=y)
    out = tmp_path / "r.json"
    assert main(["robustness", str(digits["stq"]), "--data", str(bad), "--calibration", str(digits["cal"]),
                 "--no-progress", "--jobs", "1", "--json", str(out), "--markdown", str(tmp_path / "r.md")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0] and str(label) in err[0], err
    assert not out.exists() and not (tmp_path / "r.md").exists()
    with pytest.raises(DatasetError, match="not classes of this model"):  # and through the library
        evaluate([_mut("stq", _deployed(digits, "stq"))], Dataset(data.x, np.where(y < 0, 10, y)), Settings())


def test_reports_are_written_whole_or_not_at_all(without_ste, tmp_path: Path,  # noqa: ANN001
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Every report is rendered before any is written, and each is written atomically (outputs.py)."""
    paths = tmp_path / "r.json", tmp_path / "r.html", tmp_path / "r.md"
    write_reports(without_ste, *paths)
    before = [p.read_bytes() for p in paths]
    assert json.loads(before[0])["schema"] and before[1].startswith(b"<!") and before[2].startswith(b"| Model")

    def broken(ev: Evaluation) -> str:
        raise RuntimeError("render failed")

    monkeypatch.setattr(robustness_report, "render_html", broken)
    fresh = tmp_path / "fresh"
    with pytest.raises(RuntimeError):
        write_reports(without_ste, fresh / "r.json", fresh / "r.html", fresh / "r.md")
    assert not fresh.exists()  # nothing written: the HTML failed before the JSON was touched
    monkeypatch.undo()

    def no_rename(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(outputs.os, "replace", no_rename)
    with pytest.raises(OutputError, match="--json .*could not be written.*No space left") as exc:
        write_reports(without_ste, paths[0], None)
    assert [p.read_bytes() for p in paths] == before  # the old report is intact, not half-replaced
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["r.html", "r.json", "r.md"]  # no temp left
    saved = Path(re.search(r"saved to (\S+)$", str(exc.value)).group(1))
    assert saved.is_file() and json.loads(saved.read_text())["schema"]
    saved.unlink()


# ------------------------------------------------------------------------------------------ pieces
@pytest.mark.parametrize("shape", [(4, 4, 1), (49, 10, 1), (8, 8, 1), (32, 32, 3)])
def test_square_p_init_fits_small_and_narrow_inputs(shape: tuple[int, int, int]) -> None:
    """ART's default p_init = 0.8 draws a tile wider than 4×4 or 49×10 inputs; ours always fits."""
    h, w, _ = shape
    side = round(float(np.sqrt(square_p_init(h, w) * h * w)))
    assert 1 <= side <= min(h, w) - 1
    expected = {(4, 4): 9 / 16, (49, 10): 81 / 490, (8, 8): 49 / 64, (32, 32): 0.8}[(h, w)]
    assert square_p_init(h, w) == pytest.approx(expected)


@pytest.mark.parametrize("loss", ["ce", "dlr"])
def test_bpda_loss_gradient_matches_finite_differences(loss: str) -> None:
    from tinyrobust.converter.frontend.attacks import loss_and_logit_gradient

    rng = np.random.default_rng(5)
    z, y = rng.normal(size=(6, 10)) * 3, rng.integers(0, 10, 6)
    _, grad = loss_and_logit_gradient(z, y, loss)
    h = 1e-6
    for i in range(10):
        dz = np.zeros_like(z)
        dz[:, i] = h
        numeric = (loss_and_logit_gradient(z + dz, y, loss)[0] - loss_and_logit_gradient(z - dz, y, loss)[0]) / (2 * h)
        np.testing.assert_allclose(grad[:, i], numeric, rtol=1e-4, atol=1e-6)


def test_bpda_with_the_surrogate_forward_is_arts_gradient(digits: dict[str, Path]) -> None:
    """Forward = the QKeras model itself: the BPDA estimator's loss gradient is exactly the one ART's
    TensorFlowV2Classifier computes; forward = the deployed model: it differs only through the logits."""
    from tinyrobust.converter.frontend import attacks

    model = _deployed(digits, "stq")
    x = Dataset.load(digits["data"]).x[:8]
    y = np.eye(10, dtype=np.float32)[Dataset.load(digits["data"]).y[:8]]
    kw = {"nb_classes": 10, "input_shape": (8, 8, 1), "clip_values": (0.0, 1.0)}
    art, _ = attacks.gradient_classifier(model.keras_model, **kw)
    same = attacks.bpda_classifier(model.keras_model, attacks.logits_numpy(model.keras_model), **kw)
    np.testing.assert_allclose(same.loss_gradient(x, y), art.loss_gradient(x, y) * len(x), rtol=1e-4, atol=1e-6)
    bpda = attacks.bpda_classifier(model.keras_model, lambda xb: model.predict(xb).astype(np.float32), **kw)
    assert bpda.predict(x).argmax(1).tolist() == model.predict(x).argmax(1).tolist()
    assert np.abs(bpda.loss_gradient(x, y)).sum() > 0


def test_rows_follow_threat_models_and_norms() -> None:
    rows = row_keys(("fgsm", "cw", "square", "boundary", "noise"), ("ste", "bpda"), ("linf", "l1"))
    ids = [r.id for r in rows]
    assert "bpda/cw/linf" not in ids  # C&W needs class gradients BPDA does not give
    assert "black-box/square/l1" not in ids and "black-box/boundary/l1" in ids  # min-perturbation: any norm
    assert RowKey("black-box", "boundary", "l1").craft_norm == "l2"
    assert ids[0] == "ste/fgsm/linf" and ids[-1] == "noise/noise/l1"
    assert UNBOUNDED == "unbounded"


@pytest.mark.qemu
def test_black_box_examples_confirmed_on_qemu(digits: dict[str, Path], tmp_path: Path) -> None:
    """The real thing: adversarial examples found on the reference replay bit-exactly in QEMU."""
    from tinyrobust.firmware.project import load_export
    from tinyrobust.targets.factory import open_target
    from tinyrobust.workflows.export import export_program

    model = _deployed(digits, "stq")
    export_program(model.program, "nucleo_h743zi", tmp_path / "export", model_path=digits["stq"])
    with open_target("qemu", load_export(tmp_path / "export")) as target:
        mut = replace(_mut("stq", model, run_target=target.infer_batch), counter_unit=target.counter_unit,
                      target_name="qemu")
        m = evaluate_model(mut, Dataset.load(digits["data"]), Settings(
            attacks=("fgsm", "square", "hopskipjump"), eps={"linf": (0.1,)}, limit=20, budget=SMALL))
    assert m.target_mismatches == 0 and m.all_confirmed
    assert m.latency is not None and m.latency["unit"] == "emulated instructions" and m.latency["mean"] > 0
    square = m.row("black-box", "square", "linf")
    assert square.confirmation.reference_flips > 0
    assert square.point(0.1).robust_accuracy.value < m.clean.value
    page = render_html(Evaluation("t", 0, m.samples, "0" * 64, ("fgsm",), ("ste",), ("linf",), {"linf": (0.1,)},
                                  SMALL, None, (m,)))
    assert "emulated instructions" in page and "MISMATCH" not in page
    assert "emulated instructions" in table_markdown(replace(Evaluation(
        "t", 0, m.samples, "0" * 64, ("fgsm",), ("ste",), ("linf",), {"linf": (0.1,)}, SMALL, None, (m,))))
