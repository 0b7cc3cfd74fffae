"""`tinyrobust validate`: accuracy of Keras / reference / target, byte-exactness, latency.

What "accuracy" means depends on the task (`--task`, workflows/task.py, which `auto` chooses and says
why): a classifier by argmax; a regression model or autoencoder by the deployed output's error against
Keras's in output grid steps and SNR, and, with anomaly labels, by the AUC of the reconstruction error
(Keras's and the deployed model's) and their rank agreement (workflows/output_error.py).

Every sample runs through the reference and the target; any output byte that differs makes the
run fail, and the first divergent layer of the first differing sample is found by comparing
per-layer dumps (reference vs target).

Data is checked before it is trusted: a classifier's labels must be classes of the model and an anomaly
task's 0 or 1 (else exit 2), and when more than 1 % of input values fall outside the input grid (uint8
images given to a model that expects 0…1, a model without an input quantizer fed data beyond
--input-range) they are clipped to its rails, so validate warns with the fraction, on stderr and in the
JSON (`input_saturation`, `warnings`).

A model with several inputs reads x0, x1, … from the data (one array per input, in the model's input
order); with several outputs every output must be byte-exact, and accuracy and top-1 agreement are
those of output 0 (`data_inputs`, `_output0`).
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import console, outputs
from ..converter import ops
from ..converter.pipeline import DeployedModel, convert_file
from ..converter.precision import DEFAULT_FIDELITY, Fidelity
from ..converter.program import InputQuantization, Program
from ..converter.reference import Reference
from ..dataset import Dataset
from ..errors import EXIT_MISMATCH, BadInputError
from ..firmware.project import LoadedExport, export_lock, load_export
from ..targets.factory import open_target, parse_target
from ..targets.qemu import QEMU_BOARD
from .export import export_program
from .fidelity import fidelity_lines, fidelity_markdown, fidelity_report, layer_fidelity
from .output_error import anomaly_agreement, dequantize, output_error
from .report import write_reports
from .task import TaskChoice, choose_task

# Samples the per-layer comparison runs on (every layer of Keras and of the reference is kept for each).
FIDELITY_SAMPLES = 200


@dataclass(frozen=True)
class ValidationResult:
    report: dict[str, Any]

    @property
    def bit_exact(self) -> bool:
        return self.report["agreement"]["target_reference_exact"] == self.report["samples"]


# More than this fraction of input values outside the input grid is worth a warning: a few outliers
# clip harmlessly, a systematic range mismatch (0–255 pixels, an unscaled feature) does not.
SATURATION_WARN_FRACTION = 0.01


def _accuracy(outputs: np.ndarray, labels: np.ndarray | None) -> float | None:
    if labels is None:
        return None
    return float(np.mean(outputs.argmax(axis=1) == labels))


def input_saturation(grid: InputQuantization, x: np.ndarray) -> dict[str, Any]:
    """How many input values the input grid clips: those whose level lies beyond [qmin, qmax]."""
    levels = np.round(np.asarray(x, dtype=np.float64) / grid.scale) + grid.zero_point
    below, above = int(np.sum(levels < grid.qmin)), int(np.sum(levels > grid.qmax))
    lo, hi = (grid.scale * (q - grid.zero_point) for q in (grid.qmin, grid.qmax))
    return {"fraction": (below + above) / max(1, levels.size), "below": below, "above": above,
            "values": int(levels.size), "grid": [float(lo), float(hi)], "grid_source": grid.source,
            "data": [float(np.min(x)), float(np.max(x))]}


def saturation_warning(sat: dict[str, Any]) -> str | None:
    if sat["fraction"] <= SATURATION_WARN_FRACTION:
        return None
    lo, hi = sat["grid"]
    dlo, dhi = sat["data"]
    return (f"{100 * sat['fraction']:.1f} % of input values ({sat['below'] + sat['above']:,} of {sat['values']:,}) "
            f"lie outside the input grid [{lo:.4g}, {hi:.4g}] ({sat['grid_source']}) and are clipped to its "
            f"rails; the data spans [{dlo:.4g}, {dhi:.4g}]: scale the data to the model's input domain, or "
            "give --input-range / calibration data that covers it")


def data_inputs(program: Program, data: Dataset) -> np.ndarray:
    """The data's samples as the target takes them: each input checked against the model's (the error names
    the input and its array, e.g. x1) and quantised on its grid, packed in input order (N, input_bytes)."""
    data.check_inputs([(t, program.tensor(t).shape) for t in program.inputs], "--data")
    return program.pack_inputs(data.inputs)


def _output0(program: Program, outputs: np.ndarray) -> np.ndarray:
    """Output 0's bytes of packed outputs: what accuracy and top-1 agreement are taken on."""
    return program.split_outputs(outputs)[0]


def _saturation(program: Program, data: Dataset) -> tuple[Any, list[str]]:
    """input_saturation of the one input, or a list (each with its input's name) for several; the warnings."""
    sats = [input_saturation(q, x) for q, x in zip(program.input_quantizations, data.inputs, strict=True)]
    if len(sats) == 1:
        warning = saturation_warning(sats[0])
        return sats[0], [] if warning is None else [warning]
    named = [{"input": t, **s} for t, s in zip(program.inputs, sats, strict=True)]
    return named, [f"input '{t}': {w}" for t, s in zip(program.inputs, sats, strict=True)
                   if (w := saturation_warning(s)) is not None]


def first_divergent_layer(export: LoadedExport, target, sample: np.ndarray) -> dict[str, Any] | None:
    """Re-run one sample layer by layer on both sides; the first op whose output bytes differ."""
    reference_layers = Reference(export.program).run_layers(sample)
    for i, (op, values) in enumerate(zip(export.program.ops, reference_layers, strict=True)):
        # compared as bytes: an int16 tensor's are little-endian on the target as here
        expected = np.frombuffer(values.astype(values.dtype.newbyteorder("<")).tobytes(), dtype=np.int8)
        got = np.frombuffer(target.layer_output(sample, i), dtype=np.int8)
        if got.shape != expected.shape or not np.array_equal(got, expected):
            mismatched = int(np.sum(got != expected)) if got.shape == expected.shape else -1
            return {"index": i, "layer": op.name, "kernel": op.kernel, "mismatched_bytes": mismatched,
                    "bytes": int(expected.size)}
    return None


def _iterate(items: np.ndarray, desc: str, enabled: bool) -> Iterator[np.ndarray]:
    with console.progress(len(items), desc, unit="sample", enabled=enabled) as bar:
        for item in items:
            yield item
            bar.update(1)


def _output_measures(report: dict[str, Any], task: TaskChoice, program: Program, data: Dataset,
                     keras_outputs: np.ndarray | None, ref_out: np.ndarray, target_out: np.ndarray) -> None:
    """regression / anomaly: the deployed output against Keras's, and the anomaly score's ranking."""
    out = program.tensor(program.output)
    ref_values, target_values = program.output_values(ref_out), program.output_values(target_out)
    report["output_error"] = None if keras_outputs is None else [
        output_error(program.output, keras_outputs, target_values, out.scale, out.zero_point, out.bits).to_json()]
    if task.kind == "anomaly":
        report["anomaly"] = anomaly_agreement(data.x, data.y, {
            "keras": keras_outputs,
            "reference": dequantize(ref_values, out.scale, out.zero_point),
            "target": dequantize(target_values, out.scale, out.zero_point),
        })
        anomalous = report["anomaly"]["anomalous"]
        if anomalous in (0, len(data)):
            kind = "anomalous (1)" if anomalous else "normal (0)"
            report["warnings"].append(f"every one of the {len(data)} samples is {kind}: an AUC needs both kinds, "
                                      "so none is given")


def validate(export: LoadedExport, data: Dataset, target_spec: str, *, keras_outputs: np.ndarray | None = None,
             progress: bool = True, host_sanitize: bool = False, task: TaskChoice | None = None) -> ValidationResult:
    """Every sample on the reference and the target; `task` (default: what --task auto chooses) says how the
    outputs are scored."""
    program = export.program
    x_int8 = data_inputs(program, data)
    task = task or choose_task("auto", program, data.y)
    classify = task.kind == "classification"
    if classify:
        data.check_labels(program.tensor(program.outputs[0]).elements, "--data")
    saturation, warnings = _saturation(program, data)
    kind, _ = parse_target(target_spec)
    reference = Reference(program)
    ref_out = np.stack([
        reference.run_one(x) for x in _iterate(x_int8, "reference", progress)
    ])
    report: dict[str, Any] = {
        "samples": len(data),
        "target": target_spec,
        "board": export.manifest["board"],
        "model": export.manifest["model"],
        "program_sha256": export.manifest["program_sha256"],
        "task": task.to_json(),
        # Only a classifier has an accuracy; a regression model's measures are output_error and anomaly.
        "accuracy": None if not classify else {
            "keras": None if keras_outputs is None else _accuracy(keras_outputs, data.y),
            "reference": _accuracy(_output0(program, ref_out), data.y)},
        "agreement": {},
        "latency": None,
        "per_layer": None,
        "first_divergence": None,
        "input_saturation": saturation,
        "warnings": warnings,
    }
    if keras_outputs is not None and classify:
        report["agreement"]["reference_keras_top1"] = int(np.sum(_output0(program, ref_out).argmax(1)
                                                                 == keras_outputs.argmax(1)))
    if kind == "reference":
        target_out = ref_out
        report["latency"] = {"unit": "none"}
    else:
        with open_target(target_spec, export, host_sanitize=host_sanitize) as target:
            target.check_model_hash(bytes.fromhex(export.manifest["program_sha256"]))
            with console.progress(len(data), kind, unit="sample", enabled=progress) as bar:
                target_out, counts = target.infer_batch(x_int8, progress=bar.update)
            unit = target.counter_unit
            if unit != "none":
                report["latency"] = {"unit": unit, "mean": float(np.mean(counts)), "max": int(np.max(counts)),
                                     "min": int(np.min(counts)), "sample0": int(counts[0])}
                profile = target.profile(x_int8[0])
                report["per_layer"] = [
                    {"index": i, "layer": op.name, "kernel": op.kernel, "count": int(c), "macs": ops.macs(op)}
                    for i, (op, c) in enumerate(zip(program.ops, profile, strict=True))
                ]
            else:
                report["latency"] = {"unit": "none"}
            exact = np.all(target_out == ref_out, axis=1)
            if not exact.all():
                bad = int(np.argmin(exact))
                layer = first_divergent_layer(export, target, x_int8[bad]) or {}
                report["first_divergence"] = {"sample": bad, **layer}
            stats = target.batch_stats
            if stats is not None:
                report["link"] = stats.as_dict()  # throughput, retries, restarts, resets: what the link needed
    if classify:
        report["accuracy"]["target"] = _accuracy(_output0(program, target_out), data.y)
    else:
        _output_measures(report, task, program, data, keras_outputs, ref_out, target_out)
    # A sample is exact when every byte of every output is (the outputs are packed side by side).
    report["agreement"]["target_reference_exact"] = int(np.sum(np.all(target_out == ref_out, axis=1)))
    if len(program.outputs) > 1:
        report["agreement"]["target_reference_exact_per_output"] = {
            t: int(np.sum(np.all(a == b, axis=1)))
            for t, a, b in zip(program.outputs, program.split_outputs(target_out), program.split_outputs(ref_out),
                               strict=True)}
    return ValidationResult(report)


def _num(v: float | None, spec: str = ".3f", none: str = "n/a") -> str:
    return none if v is None else format(v, spec)


def output_measure_lines(report: dict[str, Any]) -> list[str]:
    """The output error vs Keras and the anomaly AUCs, as the terminal summary shows them."""
    lines = []
    if report.get("output_error") is None and "output_error" in report:
        lines.append("output vs keras: n/a (an export directory: give the .h5 to compare with Keras)")
    for e in report.get("output_error") or []:
        lines.append(f"output '{e['tensor']}' vs keras: mean {e['mean_steps']:.2f} max {e['max_steps']:.2f} steps "
                     f"(step {e['scale']:.4g}), SNR {_num(e['snr_db'], '.1f', 'exact')} dB, "
                     f"Keras values clipped {100 * e['clipped']:.1f} %")
    an = report.get("anomaly")
    if an is not None:
        auc = an["auc"]
        lines.append(f"anomaly AUC ({an['samples']} samples, {an['anomalous']} anomalous): keras {_num(auc['keras'])}"
                     f"   reference {_num(auc['reference'])}   target {_num(auc['target'])}   "
                     f"|target - keras| {_num(an['auc_difference'])}   "
                     f"Spearman keras vs target {_num(an['spearman_keras_target'], '.4f')}")
    return lines


def summary_lines(report: dict[str, Any]) -> list[str]:
    def pct(v: float | None) -> str:
        return "n/a" if v is None else f"{100 * v:.2f} %"

    acc = report["accuracy"]
    agr = report["agreement"]
    n = report["samples"]
    lines = [f"samples: {n}   target: {report['target']}   board: {report['board']}"]
    if "task" in report:
        lines.append(TaskChoice(**report["task"]).describe())
    if acc is not None:
        lines.append(f"accuracy: keras {pct(acc['keras'])}   reference {pct(acc['reference'])}   "
                     f"target {pct(acc['target'])}")
    lines += output_measure_lines(report)
    lines.append(f"bit-exact target vs reference: {agr['target_reference_exact']}/{n}")
    per_output = agr.get("target_reference_exact_per_output")
    if per_output:
        lines.append("bit-exact per output: " + "   ".join(f"{name} {count}/{n}" for name, count in per_output.items()))
    if "reference_keras_top1" in agr:
        lines.append(f"top-1 agreement reference vs keras: {agr['reference_keras_top1']}/{n}")
    lat = report.get("latency") or {}
    if lat.get("unit") not in (None, "none"):
        lines.append(f"latency: mean {lat['mean']:.0f} {lat['unit']} per inference (max {lat['max']})")
    div = report.get("first_divergence")
    if div:
        lines.append(f"FIRST DIVERGENCE: sample {div['sample']}, layer {div.get('index')} '{div.get('layer')}' "
                     f"({div.get('kernel')}): {div.get('mismatched_bytes')} of {div.get('bytes')} bytes differ")
    return lines


def _export_for_validation(model: Path, out: Path | None, stack: ExitStack, *, board: str,
                           calibration: Path | None, input_range: tuple[float, float] | None,
                           packing: str, fidelity: Fidelity) -> tuple[LoadedExport, DeployedModel | None]:
    """An export directory is used as is; a .h5 is converted and exported (to `out` or a temporary
    directory), and its Keras model kept for the accuracy comparison."""
    if model.is_dir():
        return load_export(model), None
    console.step(f"loading TensorFlow and converting {model.name}")
    deployed = convert_file(model, calibration=calibration, input_range=input_range, packing=packing,
                            fidelity=fidelity)
    directory = out or Path(stack.enter_context(tempfile.TemporaryDirectory())) / "export"
    export_program(deployed.program, board, directory, model_path=model, int8_program=deployed.int8_program)
    return load_export(directory), deployed


# The key each layer's count also goes under in the JSON, by the target's counter.
COUNT_KEYS = {"emulated instructions": "instructions", "cycles": "cycles"}


def profile_section(report: dict[str, Any], image_board: str) -> dict[str, Any]:
    """The per-layer counts of a validate run (sample 0), as the export report and --json keep them: each
    layer's name, kernel, count (also under "instructions" or "cycles"), MACs, count per MAC and share;
    `inference` is the whole inference of the same sample, glue between the layers included."""
    unit = report["latency"]["unit"]
    total = sum(p["count"] for p in report["per_layer"])
    layers = []
    for p in report["per_layer"]:
        layer = {"index": p["index"], "layer": p["layer"], "name": p["layer"], "kernel": p["kernel"],
                 "count": p["count"], "macs": p["macs"], "per_mac": p["count"] / p["macs"] if p["macs"] else None,
                 "share": p["count"] / total if total else 0.0}
        if unit in COUNT_KEYS:
            layer[COUNT_KEYS[unit]] = p["count"]
        layers.append(layer)
    return {"target": report["target"], "unit": unit, "image_board": image_board, "sample": 0, "layers": layers,
            "total": total, "inference": report["latency"]["sample0"]}


def _image_board(export: LoadedExport, target: str) -> str:
    """QEMU runs the qemu_mps2_an500 build of the same model and kernels, not the export's board image."""
    kind, _ = parse_target(target)
    return QEMU_BOARD if kind == "qemu" else export.manifest["board"]


def _record(export: LoadedExport, key: str, section: dict[str, Any]) -> None:
    """Add `section` under `key` to the export's report.json and re-render report.md/.html from it."""
    with export_lock(export.directory):
        try:
            kept = json.loads((export.directory / "report.json").read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise BadInputError(f"{export.directory}/report.json cannot be read ({exc}); export again") from exc
        if not isinstance(kept, dict) or kept.get("program_sha256") != export.manifest["program_sha256"]:
            raise BadInputError(f"{export.directory}/report.json describes another program; export again")
        kept[key] = section
        write_reports(kept, export.directory)


def record_profile(export: LoadedExport, report: dict[str, Any]) -> Path:
    """Add the run's per-layer counts to the export's report.json/.md/.html (re-rendered); returns report.html."""
    _record(export, "profile", profile_section(report, _image_board(export, report["target"])))
    return export.directory / "report.html"


def output_section(report: dict[str, Any]) -> dict[str, Any]:
    """What a regression / anomaly run adds to the export's report: the task, the output error vs Keras and
    the anomaly AUCs (report.py renders it in report.md)."""
    return {"target": report["target"], "samples": report["samples"], "task": report["task"],
            "output_error": report.get("output_error"), "anomaly": report.get("anomaly")}


def validate_command(*, model: Path, data: Path, target: str, json_path: Path | None, limit: int | None,
                     out: Path | None, progress: bool, host_sanitize: bool, board: str, calibration: Path | None,
                     input_range: tuple[float, float] | None, packing: str, layers: bool = False,
                     profile: bool = False, task: str = "auto", fidelity: Fidelity = DEFAULT_FIDELITY) -> int:
    """`tinyrobust validate`: exit 0 when the target is bit-exact with the reference, 1 when not.

    With `profile`, the per-layer counts read back from the target go into the export's report
    (the export directory given, or --out): report.json, report.md and report.html beside each other. A
    regression or anomaly run with --out also adds its output error and AUCs there (`output_measures`)."""
    if layers and model.is_dir():
        raise BadInputError("--layers compares with the Keras model: give the .h5, not an export directory")
    dataset = Dataset.load(data, need_labels=False).limit(limit)  # labels: what the task needs, checked below
    with ExitStack() as stack:
        export, deployed = _export_for_validation(model, out, stack, board=board, calibration=calibration,
                                                  input_range=input_range, packing=packing, fidelity=fidelity)
        if layers and len(export.program.inputs) > 1:
            raise BadInputError(f"--layers compares a model with one input; this one has "
                                f"{len(export.program.inputs)} ({', '.join(export.program.inputs)})")
        data_inputs(export.program, dataset)  # checked before Keras sees it
        chosen = choose_task(task, export.program, dataset.y)
        if chosen.kind == "classification":
            dataset.check_labels(export.program.tensor(export.program.outputs[0]).elements, "--data")
        keras_outputs = None
        if deployed is not None:
            keras_outputs = (deployed.keras_predict(dataset.x) if len(dataset.inputs) == 1
                             and len(export.program.outputs) == 1 else
                             deployed.keras_predict_outputs(dataset.inputs)[0])
        result = validate(export, dataset, target, keras_outputs=keras_outputs, progress=progress,
                          host_sanitize=host_sanitize, task=chosen)
        if out is not None and chosen.kind != "classification":
            _record(export, "output_measures", output_section(result.report))
        profiled = None
        if profile and result.report["per_layer"] is not None:
            profiled = record_profile(export, result.report)
            result.report["profile"] = profile_section(result.report, _image_board(export, target))
        if layers and deployed is not None:
            x = dataset.x[:FIDELITY_SAMPLES]
            result.report["fidelity"] = fidelity_report(layer_fidelity(deployed, x), len(x))
            if out is not None:  # a kept export: its report gains the per-layer table
                with (out / "report.md").open("a") as f:
                    f.write("\n" + fidelity_markdown(result.report["fidelity"]))
    for warning in result.report["warnings"]:
        print(f"tinyrobust validate: warning: {warning}", file=sys.stderr)
    for line in summary_lines(result.report):
        print(line)
    if "fidelity" in result.report:
        for line in fidelity_lines(result.report["fidelity"]):
            print(line)
    if profile:
        if profiled is None:
            raise BadInputError(f"--profile: target {target} counts nothing, so there are no per-layer counts")
        print(f"per-layer {result.report['latency']['unit']} written to {profiled} (and report.md, report.json)")
    if json_path is not None:
        outputs.write_text(json_path, json.dumps(result.report, indent=1, sort_keys=True) + "\n", "--json")
    if not result.bit_exact:
        print("error: target output differs from the reference", file=sys.stderr)
        return EXIT_MISMATCH
    return 0
