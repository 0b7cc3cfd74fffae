"""What each CLI command does; cli.py only parses arguments and maps errors to exit codes."""

from __future__ import annotations

import json
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from .dataset import Dataset
from .export import ExportResult, LoadedExport, export_program, load_export
from .pipeline import ConvertOptions, DeployedModel, convert


def parse_range(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError as exc:
        raise ValueError(f"--input-range takes 'lo,hi', got {text!r}") from exc
    if not hi > lo:
        raise ValueError(f"--input-range needs lo < hi, got {text!r}")
    return lo, hi


def convert_model(model: Path, *, calibration: Path | None, input_range: str, packing: str) -> DeployedModel:
    cal = Dataset.load(calibration, need_labels=False) if calibration else None
    return convert(model, ConvertOptions(input_range=parse_range(input_range), packing=packing, calibration=cal))


def run_export(args: Any) -> int:
    deployed = convert_model(Path(args.model), calibration=args.calibration, input_range=args.input_range,
                             packing=args.packing)
    out = Path(args.output) if args.output else Path(f"{Path(args.model).stem}_{args.board}")
    result: ExportResult = export_program(deployed.program, args.board, out, model_path=Path(args.model),
                                          build=args.build)
    t = result.report["totals"]
    arena = result.report["arena"]
    print(f"exported {Path(args.model).name} → {result.out_dir}")
    print(f"  {len(deployed.program.ops)} ops, {t['params']:,} weights, {t['macs']:,} MACs")
    print(f"  packed weights {t['packed_weight_bytes']:,} B ({deployed.program.packing}), flash tables "
          f"{t['flash_bytes']:,} B; arena {arena['bytes']:,} B in {arena['region']}")
    if args.build:
        print(f"  firmware: {result.out_dir / 'firmware' / 'firmware.elf'}")
    return 0


def _export_for_validation(args: Any, stack: ExitStack) -> tuple[LoadedExport, DeployedModel | None]:
    path = Path(args.model)
    if path.is_dir():
        return load_export(path), None
    deployed = convert_model(path, calibration=args.calibration, input_range=args.input_range,
                             packing=args.packing)
    out = Path(args.out) if args.out else Path(stack.enter_context(tempfile.TemporaryDirectory())) / "export"
    export_program(deployed.program, args.board, out, model_path=path)
    return load_export(out), deployed


def run_validate(args: Any) -> int:
    from .validate import summary_lines, validate

    if args.limit is not None and args.limit <= 0:
        raise ValueError(f"--limit must be positive, got {args.limit}")
    data = Dataset.load(args.data).limit(args.limit)
    with ExitStack() as stack:
        export, deployed = _export_for_validation(args, stack)
        data.check_shape(export.program.tensor(export.program.input).shape, "--data")  # before Keras sees it
        keras_outputs = deployed.keras_predict(data.x) if deployed is not None else None
        result = validate(export, data, args.target, keras_outputs=keras_outputs, progress=not args.no_progress,
                          host_sanitize=args.host_sanitize)
    for line in summary_lines(result.report):
        print(line)
    if args.json:
        Path(args.json).write_text(json.dumps(result.report, indent=1, sort_keys=True) + "\n")
    if not result.bit_exact:
        print("error: target output differs from the reference", file=sys.stderr)
        return 1
    return 0


def run_demo(args: Any) -> int:
    from .demo import run_demo as demo

    return demo(Path(args.work_dir) if args.work_dir else None, target=args.target, limit=args.limit)


def run_devices(args: Any) -> int:
    from .targets.serial_target import find_boards

    boards = find_boards()
    if not boards:
        print("no boards found (is the NUCLEO connected over its ST-LINK USB port?)")
        return 0
    for b in boards:
        print(f"{b.board or 'unknown board'}\tport {b.serial_port or '-'}\tdrive {b.mount_point or '-'}")
    return 0


def run_flash(args: Any) -> int:
    from .targets.serial_target import find_boards, flash

    binary = Path(args.export_dir) / "firmware" / "firmware.bin"
    if not binary.is_file():
        raise FileNotFoundError(f"{binary} not found: export with --build first")
    port = None
    if args.mount:
        mount = Path(args.mount)
    else:
        boards = [b for b in find_boards() if b.mount_point]
        if len(boards) != 1:
            raise ValueError(f"found {len(boards)} board drives; name one with --mount")
        mount, port = boards[0].mount_point, boards[0].serial_port
    flash(binary, mount, serial_port=port)
    print(f"flashed {binary} to {mount}")
    return 0


class TargetRunner:
    """int8 inputs → the target's int8 outputs, for the robustness attacks; owns the target and the
    temporary export it was built from until close()."""

    def __init__(self, model: DeployedModel, board: str, target_spec: str):
        from .targets.factory import open_target

        self._tmp = tempfile.TemporaryDirectory(prefix="tinyrobust-robustness-")
        try:
            out = Path(self._tmp.name) / "export"
            export_program(model.program, board, out)
            export = load_export(out)
            self._target = open_target(target_spec, export)
            self._target.check_model_hash(bytes.fromhex(export.manifest["program_sha256"]))
        except BaseException:
            self._tmp.cleanup()
            raise

    def __call__(self, x_int8):
        return self._target.infer_batch(x_int8)[0]

    def close(self) -> None:
        try:
            self._target.close()
        finally:
            self._tmp.cleanup()


def robustness_target_factory(model: DeployedModel, args: Any):
    from .targets.factory import parse_target

    kind, _ = parse_target(args.target)
    if kind == "reference":
        return model.reference.run
    return TargetRunner(model, args.board, args.target)


def run_robustness(args: Any) -> int:
    from .robustness_cli import run_robustness_command

    return run_robustness_command(args, robustness_target_factory)
