"""Datasets: .npz files with `x` (N, …) float32 in the model's input domain and `y` (N,) labels."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DatasetError


@dataclass(frozen=True)
class Dataset:
    x: np.ndarray
    y: np.ndarray | None

    def __len__(self) -> int:
        return len(self.x)

    def limit(self, n: int | None) -> Dataset:
        if n is None:
            return self
        return Dataset(self.x[:n], None if self.y is None else self.y[:n])

    @staticmethod
    def load(path: str | Path, *, need_labels: bool = True) -> Dataset:
        path = Path(path)
        try:
            loaded = np.load(path, allow_pickle=False)
            if not isinstance(loaded, np.lib.npyio.NpzFile):
                raise DatasetError(f"{path}: a single .npy array, not an .npz dataset with arrays 'x' and 'y'")
            with loaded as f:
                if "x" not in f:
                    raise DatasetError(f"{path}: no array 'x' (found: {', '.join(f.files) or 'none'})")
                x = np.asarray(f["x"])
                y = np.asarray(f["y"]) if "y" in f else None
        except DatasetError:
            raise
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise DatasetError(f"{path}: not a readable .npz dataset ({exc})") from exc
        if not np.issubdtype(x.dtype, np.floating) and not np.issubdtype(x.dtype, np.integer):
            raise DatasetError(f"{path}: x has dtype {x.dtype}, expected float32")
        if x.ndim < 2 or len(x) == 0:
            raise DatasetError(f"{path}: x must be (N, …) with N >= 1, got shape {x.shape}")
        if need_labels and y is None:
            raise DatasetError(f"{path}: no array 'y' of labels")
        if y is not None:
            if y.shape != (len(x),) or not np.issubdtype(y.dtype, np.integer):
                raise DatasetError(f"{path}: y must be ({len(x)},) integers, got {y.shape} {y.dtype}")
        if not np.all(np.isfinite(x)):
            raise DatasetError(f"{path}: x holds NaN or infinite values")
        return Dataset(x.astype(np.float32), y)

    def check_shape(self, shape: tuple[int, ...], what: str) -> None:
        if tuple(self.x.shape[1:]) != tuple(shape):
            raise DatasetError(f"{what}: samples have shape {tuple(self.x.shape[1:])}, the model takes {tuple(shape)}")
