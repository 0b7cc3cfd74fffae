"""A Table-IV comparison on load_digits, on the emulated Cortex-M7: a float model, its stochastic-ternary
twin (the committed example), and that twin trained with Jacobian regularisation (seed 000's STQ+JR),
all attacked on the same samples, seeds and budgets.

    .venv/bin/python examples/table_iv_digits.py [OUT_DIR] [--target qemu] [--queries 1000] [--limit N]

Trains the float and JR models (deterministic, a minute), then runs `tinyrobust robustness` on the
three and writes OUT_DIR/table_iv.{json,md,html}; prints the table and how long it took.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from tinyrobust import lazy
from tinyrobust.cli import main
from tinyrobust.resources import checkout_file
from tinyrobust.workflows.demo import EXAMPLE, digits_split

JR_WEIGHT = 0.05  # λ of the Jacobian penalty: clean accuracy stays within a few points of the plain STQ model


def train(out: Path) -> dict[str, Path]:
    models = lazy.frontend().models
    split = digits_split()
    paths = {"float": out / "digits_float.h5", "stq": checkout_file(EXAMPLE) or out / "digits_stq.h5",
             "stq_jr": out / "digits_stq_jr.h5"}
    if not paths["float"].exists():
        models.train_digits_cnn(paths["float"], split.x_train, split.y_train, build=models.digits_float_cnn)
    if not paths["stq"].exists():
        models.train_digits_cnn(paths["stq"], split.x_train, split.y_train)
    if not paths["stq_jr"].exists():
        models.train_digits_cnn(paths["stq_jr"], split.x_train, split.y_train, jacobian_weight=JR_WEIGHT)
    np.savez(out / "digits_train.npz", x=split.x_train, y=split.y_train)
    np.savez(out / "digits_test.npz", x=split.x_test, y=split.y_test)
    return paths


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, nargs="?", default=Path("table_iv_digits"))
    parser.add_argument("--target", default="qemu")
    parser.add_argument("--queries", default="1000")
    parser.add_argument("--limit", default=None)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    paths = train(args.out)
    t = time.monotonic()
    code = main(["robustness", str(paths["float"]), str(paths["stq"]), str(paths["stq_jr"]),
                 "--data", str(args.out / "digits_test.npz"), "--calibration", str(args.out / "digits_train.npz"),
                 "--target", args.target, "--attacks", "fgsm,pgd,apgd-ce,square,noise", "--eps", "0.05,0.1,0.2",
                 "--queries", args.queries, "--json", str(args.out / "table_iv.json"),
                 "--markdown", str(args.out / "table_iv.md"), "--html", str(args.out / "table_iv.html"),
                 *(["--limit", args.limit] if args.limit else []), "--no-progress"])
    print(f"robustness of three models on {args.target}: {time.monotonic() - t:.0f} s (exit {code})")
    raise SystemExit(code)
