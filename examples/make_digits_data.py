"""Write the example's data files next to the model, from scikit-learn's load_digits:

    .venv/bin/python examples/make_digits_data.py

- digits_cal.npz: the 1,200 training samples, for `--calibration` (the ranges of the tensors the model
  states no grid for, here its float logits, come from the data the model was trained on);
- digits_test.npz: the 597 held-out samples, for `--data` (validate, robustness).

Both hold x (N, 8, 8, 1) float32 in [0, 1] and y (N,) labels: the split `tinyrobust demo` uses.
"""

from pathlib import Path

import numpy as np

from tinyrobust.workflows.demo import digits_split

if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    split = digits_split()
    np.savez_compressed(here / "digits_cal.npz", x=split.x_train, y=split.y_train)
    np.savez_compressed(here / "digits_test.npz", x=split.x_test, y=split.y_test)
    print(f"wrote {here / 'digits_cal.npz'} and {here / 'digits_test.npz'}")
