"""The `tinyrobust` command line: parse the arguments, check them (preflight.py), dispatch to the
command's workflow, and turn what it raises into one line and an exit code (errors.py). No work
happens here.

Signals: SIGINT, SIGTERM and SIGHUP all end a run the same way (CI cancellation, timeout(1) and
pytest-timeout send SIGTERM, a closed terminal SIGHUP): the run unwinds, closing its targets; every
child process still running is ended (processes.py); one line is printed; the exit code is 128 + the
signal's number. A second signal during that clean-up ends the children and the process at once.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import signal
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from . import __version__, console, lazy, preflight, processes
from .converter.precision import DEFAULT_FIDELITY, FIDELITIES, FIDELITY_HELP
from .errors import EXIT_INTERNAL, EXIT_SIGNAL_BASE, TinyRobustError, terminal_message
from .workflows.robustness.threats import ATTACKS, GRADIENT_THREATS, NORMS
from .workflows.task import TASK_HELP, TASKS

# The names `train` offers, spelled here so `--help` needs no TensorFlow (a test keeps them in step).
TRAIN_ARCHITECTURES = ("digits_cnn", "paper", "resnet8", "ds_cnn")
QUANTIZE = ("stq", "ternary", "int8", "none")
ADVERSARIAL_TRAINING = ("fgsm", "pgd")
TARGETS_HELP = "reference | host | qemu | renode | serial[:PORT]"


# ---------------------------------------------------------------- argument types


def float_list(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got '{text}'") from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one number")
    return values


def value_range(text: str) -> tuple[float, float]:
    """'lo,hi' with lo < hi."""
    values = float_list(text)
    if len(values) != 2 or not values[0] < values[1]:
        raise argparse.ArgumentTypeError(f"expected lo,hi with lo < hi, got '{text}'")
    return values[0], values[1]


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got '{text}'") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def c_prefix(text: str) -> str:
    from .firmware.codegen.c_names import prefix_problem

    problem = prefix_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text


def choice_list(choices: Sequence[str], what: str) -> Callable[[str], list[str]]:
    """A comma-separated subset of `choices`."""
    def parse(text: str) -> list[str]:
        names = [a.strip().lower() for a in text.split(",") if a.strip()]
        if not names or any(a not in choices for a in names):
            raise argparse.ArgumentTypeError(f"unknown {what}(s) '{text}'; choose from {','.join(choices)}")
        return names
    return parse


attack_list = choice_list(ATTACKS, "attack")


def eps_spec(text: str) -> tuple[str | None, list[float]]:
    """'0.05,0.1' (the one --norm) or 'l2:0.5,1' (that norm)."""
    norm, sep, values = text.partition(":")
    if not sep:
        return None, float_list(text)
    if norm.strip().lower() not in NORMS:
        raise argparse.ArgumentTypeError(f"unknown norm '{norm}' in --eps; choose from {','.join(NORMS)}")
    return norm.strip().lower(), float_list(values)


def beta_lambda(text: str) -> tuple[float, float]:
    """'β,λ' of --lipschitz."""
    values = float_list(text)
    if len(values) != 2:
        raise argparse.ArgumentTypeError(f"expected β,λ (two numbers), got '{text}'")
    return values[0], values[1]


def name_value(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip() or not value.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got '{text}'")
    return name.strip(), value.strip()


def jobs_count(text: str) -> int:
    """A positive number of processes, or 0 for one per CPU."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of processes, got '{text}'") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 (one per CPU) or positive, got {value}")
    return value


# ---------------------------------------------------------------- the parser


def _model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--board", default="nucleo_h743zi", help="target board")
    p.add_argument("--calibration", type=Path, default=None,
                   help=".npz with x: samples that give ranges to tensors the model states no grid for")
    p.add_argument("--input-range", type=value_range, default=None, metavar="LO,HI",
                   help="float range of the model input when it has no input quantizer (default: from "
                   "--calibration, else 0,1)")
    p.add_argument("--packing", choices=("t2", "trit5"), default="t2", help="ternary weight packing")
    p.add_argument("--fidelity", choices=FIDELITIES, default=DEFAULT_FIDELITY, help=FIDELITY_HELP)


class DefaultsHelp(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default when there is one to show: not for flags and unset options, and not
    twice when the help text already says it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    fmt = DefaultsHelp
    parser = argparse.ArgumentParser(prog="tinyrobust", formatter_class=fmt,
                                     description="Deploy ternary QKeras models on STM32H7 and prove on the target "
                                     "that nothing was lost.")
    parser.add_argument("--version", action="version", version=f"tinyrobust {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("export", formatter_class=fmt,
                       help="QKeras .h5 → C library, firmware project, manifest and report")
    p.add_argument("model", type=Path, help="QKeras model (.h5)")
    p.add_argument("-o", "--output", type=Path, help="export directory (default: <model>_<board>)")
    p.add_argument("--build", action="store_true", help="cross-build the firmware and check the linked budget")
    p.add_argument("-n", "--name", type=c_prefix, default="tr", metavar="PREFIX",
                   help="prefix of every C name of the model (PREFIX_model_run, PREFIX_model.h), so several "
                   "models link into one firmware")
    _model_options(p)

    p = sub.add_parser("validate", formatter_class=fmt, help="accuracy, bit-exactness and latency on a target")
    p.add_argument("model", type=Path, help="QKeras model (.h5) or an export directory")
    p.add_argument("--data", type=Path, required=True,
                   help=".npz with x (N, ...) float32 and y (N,) labels: classes, or 0/1 anomaly labels (see "
                        "--task); without y, no accuracy or AUC, the rest is measured. A model with several inputs "
                        "takes x0, x1, … (one array per input, in its input order); with several outputs all must "
                        "be byte-exact, and accuracy is output 0's")
    p.add_argument("--task", choices=TASKS, default="auto", help=TASK_HELP)
    p.add_argument("--target", default="reference", help=TARGETS_HELP)
    p.add_argument("--json", type=Path, help="write the report as JSON here")
    p.add_argument("--limit", type=positive_int, default=None, help="use the first N samples only")
    p.add_argument("--out", type=Path, help="where to export a .h5 model (default: a temporary directory)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--host-sanitize", action="store_true",
                   help="build the host target with ASan/UBSan (needs libasan in LD_PRELOAD)")
    p.add_argument("--layers", action="store_true",
                   help="per-layer fidelity: every deployed tensor against its Keras counterpart (needs the .h5)")
    p.add_argument("--profile", action="store_true",
                   help="write the per-layer counts read back from the target (qemu, renode, serial) into the "
                        "export's report.json/.md/.html (the export directory given, or --out)")
    _model_options(p)

    p = sub.add_parser("robustness", formatter_class=fmt,
                       help="adversarial robustness (ART) of deployed models, confirmed on a target; several "
                            "models give one comparison table")
    p.add_argument("models", type=Path, nargs="+", metavar="MODEL.h5",
                   help="trained QKeras/Keras models, all evaluated on the same samples, seeds and budgets")
    p.add_argument("--data", type=Path, required=True, help="dataset .npz with x (N, …) float32 and y (N,) labels")
    p.add_argument("--target", default="reference", help=TARGETS_HELP)
    p.add_argument("--attacks", type=attack_list, default=None,
                   help=f"comma-separated, from {','.join(ATTACKS)} (default: fgsm,pgd,apgd-ce,square,noise)")
    p.add_argument("--threat-models", type=choice_list(GRADIENT_THREATS, "threat model"), default=None,
                   help="what the gradient attacks may use: ste (the QKeras model's straight-through gradients), "
                        "bpda (the deployed model forward, those gradients backward), transfer (a float --source "
                        "model) (default: ste,bpda, plus transfer with --source)")
    p.add_argument("--source", type=Path, default=None, metavar="SOURCE.h5",
                   help="a separate float model for the transfer threat model")
    p.add_argument("--norm", type=choice_list(NORMS, "norm"), default=None,
                   help="comma-separated norms (default: linf)")
    p.add_argument("--eps", type=eps_spec, action="append", default=None, metavar="[NORM:]E1,E2,…",
                   help="ε in the units of the data's x, per norm (repeat for several norms); default: "
                        ".05,.1,.2,.3 × the data's range (× √D for l2, × D for l1)")
    p.add_argument("--limit", type=positive_int, default=None, help="evaluate only the first N samples")
    p.add_argument("--seed", type=int, default=0, help="one seed for every attack: same seed, same report")
    p.add_argument("--iterations", type=positive_int, default=None, help="steps of PGD, APGD and C&W (default 20)")
    p.add_argument("--restarts", type=positive_int, default=None,
                   help="random restarts of PGD, APGD and Square (default 1)")
    p.add_argument("--queries", type=positive_int, default=None,
                   help="per-sample query budget of the black-box attacks (default 1000; the paper used 10000)")
    p.add_argument("--budget", type=name_value, action="append", default=None, metavar="NAME=VALUE",
                   help="any other budget, e.g. cw_binary_search_steps=5 (the JSON lists them all)")
    p.add_argument("--folds", type=positive_int, default=None, help="also report robust accuracy over K folds")
    p.add_argument("--jobs", type=jobs_count, default=0,
                   help="processes crafting in parallel (0: one per CPU); results do not depend on it")
    p.add_argument("--shard-size", type=positive_int, default=100,
                   help="samples per unit of work (with --seed, fixes the result)")
    p.add_argument("--strict", action="store_true", help="exit 4 when a gradient-masking check is flagged")
    p.add_argument("--json", type=Path, default=None, help="write the JSON report here")
    p.add_argument("--html", type=Path, default=None, help="write the HTML report (with plots) here")
    p.add_argument("--markdown", type=Path, default=None, help="write the Markdown table here")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    _model_options(p)

    p = sub.add_parser("train", formatter_class=fmt,
                       help="train a robust (stochastic-)ternary model: STQ, Jacobian and Lipschitz regularisers, "
                            "adversarial training; then export and evaluate it")
    p.add_argument("--data", type=Path, required=True, help="training set .npz with x (N, …) float32 and y (N,) labels")
    p.add_argument("--val", type=Path, required=True, help="validation set .npz (early stopping, reported accuracy)")
    p.add_argument("--arch", required=True, metavar="NAME|MODEL.h5",
                   help=f"built-in architecture ({', '.join(TRAIN_ARCHITECTURES)}) or a Keras/QKeras .h5 to fine-tune")
    p.add_argument("-o", "--output", type=Path, required=True, help="the trained model (.h5)")
    p.add_argument("--quantize", choices=QUANTIZE, default="stq",
                   help="weights: stochastic ternary, ternary, 8-bit or float; the quantized modes put activation "
                        "quantizers on every tensor, so export needs no calibration data")
    p.add_argument("--jr", type=float, default=None, metavar="λ", help="per-layer Jacobian regularisation weight")
    p.add_argument("--lipschitz", type=beta_lambda, default=None, metavar="β,λ",
                   help="orthogonality regulariser λ·Σ‖WᵀW − βI‖² (Defensive Quantization)")
    p.add_argument("--adv", choices=ADVERSARIAL_TRAINING, default=None, help="adversarial training (a baseline)")
    p.add_argument("--adv-eps", type=float, default=None, metavar="ε",
                   help="L∞ ε of --adv in the data's units (default: 0.1 × the data's range)")
    p.add_argument("--epochs", type=positive_int, default=30, help="training epochs")
    p.add_argument("--patience", type=positive_int, default=None,
                   help="stop after N epochs without a better validation accuracy (the best weights are kept)")
    p.add_argument("--batch-size", type=positive_int, default=64, help="samples per step")
    p.add_argument("--seed", type=int, default=0, help="same seed, same weights")
    p.add_argument("--then-evaluate", action="store_true",
                   help="export the trained model (no calibration) and run `robustness` on it")
    p.add_argument("--test", type=Path, default=None, help="data for --then-evaluate (default: --val)")
    p.add_argument("--target", default="reference", help=f"target of --then-evaluate: {TARGETS_HELP}")
    p.add_argument("--limit", type=positive_int, default=None, help="--then-evaluate on the first N samples")
    p.add_argument("--board", default="nucleo_h743zi", help="target board of --then-evaluate")
    p.add_argument("--packing", choices=("t2", "trit5"), default="t2", help="ternary weight packing")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")

    p = sub.add_parser("demo", formatter_class=fmt,
                       help="train/load the load_digits example, export, build, validate on QEMU")
    p.add_argument("-o", "--output", "--work-dir", dest="work_dir", type=Path, default=Path("tinyrobust-demo"),
                   help="folder for the example, its export and results (an earlier demo's folder is refreshed)")
    p.add_argument("--target", default="qemu", help="where to validate")
    p.add_argument("--limit", type=positive_int, default=None, help="validate on the first N held-out samples")

    p = sub.add_parser("bench", formatter_class=fmt,
                       help="instructions per MAC of the tr_nn kernels and a paper-size model (QEMU)")
    p.add_argument("--json", type=Path, help="write the results as JSON here")
    p.add_argument("--quick", action="store_true", help="smaller spatial sizes (same kernels), for tests")
    p.add_argument("--no-model", action="store_true", help="kernels only: skip the paper-size model")
    p.add_argument("--work-dir", type=Path, help="keep the bench's builds and runs here (default: temporary)")

    sub.add_parser("devices", formatter_class=fmt, help="list connected boards (ST-LINK USB IDs, drives, mbed-tools)")

    p = sub.add_parser("flash", formatter_class=fmt,
                       help="program a connected board with an export's firmware (OpenOCD or its ST-LINK drive)")
    p.add_argument("export_dir", type=Path, help="export directory built with --build")
    p.add_argument("--via", choices=("openocd", "drive"), default="openocd",
                   help="openocd: program firmware.elf over the ST-LINK (verified, needs the openocd package); "
                   "drive: copy firmware.bin to the board's ST-LINK drive")
    p.add_argument("--mount", type=Path,
                   help="--via drive: mount point of the board's drive; unset, the one drive found")
    p.add_argument("--probe", help="USB serial number of the ST-LINK to use when several are connected")
    for command in sub.choices.values():
        command.add_argument("-q", "--quiet", action="store_true",
                             help="print results, warnings and errors only: no step lines, no progress")
    return parser


# ---------------------------------------------------------------- dispatch


def _model_kwargs(a: argparse.Namespace) -> dict[str, Any]:
    return {"board": a.board, "calibration": a.calibration, "input_range": a.input_range, "packing": a.packing,
            "fidelity": a.fidelity}


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "export": lambda a: lazy.workflow("export").export_command(
        model=a.model, output=a.output, build=a.build, name=a.name, **_model_kwargs(a)),
    "validate": lambda a: lazy.workflow("validate").validate_command(
        model=a.model, data=a.data, target=a.target, json_path=a.json, limit=a.limit, out=a.out,
        progress=not a.no_progress, host_sanitize=a.host_sanitize, layers=a.layers, profile=a.profile,
        task=a.task, **_model_kwargs(a)),
    "robustness": lambda a: lazy.workflow("robustness.command").robustness_command(
        models=a.models, data=a.data, target=a.target, attacks=a.attacks, threat_models=a.threat_models,
        source=a.source, norms=a.norm or ["linf"], eps=a.eps, limit=a.limit, seed=a.seed, iterations=a.iterations,
        restarts=a.restarts, queries=a.queries, budget=dict(a.budget or []), folds=a.folds, jobs=a.jobs,
        shard_size=a.shard_size, strict=a.strict, json_path=a.json, html_path=a.html, markdown_path=a.markdown,
        progress=not a.no_progress, **_model_kwargs(a)),
    "train": lambda a: lazy.workflow("train").train_command(
        data=a.data, val=a.val, output=a.output, then_evaluate=a.then_evaluate, test=a.test, target=a.target,
        limit=a.limit, board=a.board, packing=a.packing, progress=not a.no_progress,
        options=lazy.workflow("train").TrainOptions(
            arch=a.arch, quantize=a.quantize, jr=a.jr, lipschitz=a.lipschitz, adv=a.adv, adv_eps=a.adv_eps,
            epochs=a.epochs, patience=a.patience, seed=a.seed, batch_size=a.batch_size)),
    "demo": lambda a: lazy.workflow("demo").demo_command(work_dir=a.work_dir, target=a.target, limit=a.limit),
    "bench": lambda a: lazy.workflow("bench").bench_command(
        json_path=a.json, quick=a.quick, with_model=not a.no_model, work_dir=a.work_dir),
    "devices": lambda a: lazy.workflow("board").devices_command(),
    "flash": lambda a: lazy.workflow("board").flash_command(
        export_dir=a.export_dir, via=a.via, mount=a.mount, probe=a.probe),
}


ENDING_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(KeyboardInterrupt):
    """A signal ended the run. A KeyboardInterrupt, so no `except Exception` on the way swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def _signals_end_the_run() -> Iterator[None]:
    """Within: the first ending signal raises Interrupted in the main thread; a second one, arriving
    while the first unwinds, ends every child and exits without waiting further."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread (e.g. main() called from a test thread)
        return
    received: list[int] = []

    def on_signal(signum: int, frame: object) -> None:
        if received:
            processes.terminate_all(grace_s=0)
            os._exit(EXIT_SIGNAL_BASE + signum)
        received.append(signum)
        raise Interrupted(signum)

    previous = {sig: signal.signal(sig, on_signal) for sig in ENDING_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _report_crash(command: str) -> int:
    """An unexpected exception is a bug: one line, the traceback in a file, exit 3."""
    fd, path = tempfile.mkstemp(prefix="tinyrobust-crash-", suffix=".txt")
    with os.fdopen(fd, "w") as f:
        f.write(f"tinyrobust {__version__} {' '.join(sys.argv[1:])}\n\n{traceback.format_exc()}")
    kind = type(sys.exc_info()[1]).__name__
    print(f"tinyrobust {command}: internal error ({kind}); the traceback is in {path}", file=sys.stderr)
    return EXIT_INTERNAL


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console.configure(quiet=getattr(args, "quiet", False))
    with _signals_end_the_run():
        try:
            preflight.check(args.command, args)
            return COMMANDS[args.command](args)
        except TinyRobustError as exc:
            print(f"tinyrobust {args.command}: error: {terminal_message(exc)}", file=sys.stderr)
            return exc.exit_code
        except KeyboardInterrupt as exc:
            signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
            processes.terminate_all()  # whatever the unwinding did not close
            name = signal.Signals(signum).name
            print(f"tinyrobust {args.command}: stopped by {name}; no child process left running", file=sys.stderr)
            return EXIT_SIGNAL_BASE + signum
        except BrokenPipeError:
            processes.terminate_all()
            if not _stdout_is_gone():
                return _report_crash(args.command)
            # The reader of our output went away (`tinyrobust … | head`): stop quietly, as a shell tool would.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return EXIT_SIGNAL_BASE + signal.SIGPIPE
        except Exception:
            processes.terminate_all()
            return _report_crash(args.command)


def _stdout_is_gone() -> bool:
    """Our stdout is a pipe nobody reads any more (poll reports an error on its write end)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):
        return False


if __name__ == "__main__":
    sys.exit(main())
