"""Train the embedded example: a stochastic-ternary QKeras CNN on load_digits.

    .venv/bin/python examples/train_digits.py            # writes examples/digits_stq.h5

`make demo` uses the committed digits_stq.h5; this script is how it was made (deterministic seed).
"""

from pathlib import Path

from tinyrobust.workflows.demo import train_digits_model

if __name__ == "__main__":
    out = train_digits_model(Path(__file__).resolve().parent / "digits_stq.h5")
    print(f"wrote {out}")
