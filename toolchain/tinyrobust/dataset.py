"""Datasets: .npz files with `x` (N, …) float32 in the model's input domain and `y` (N,) labels.

Before an array is read, its header is checked against the bytes the file holds: a header that claims
2^40 samples is a corrupt file (one line, exit 2), not a MemoryError. Labels are class indices, so a
negative label or one beyond int32 is refused on load, and one at or above the model's class count
by `check_labels`.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DatasetError

MAX_LABEL = np.iinfo(np.int32).max


def _check_member_sizes(path: Path, names: tuple[str, ...]) -> None:
    """Each array's header must describe exactly the data the archive holds for it."""
    try:
        with zipfile.ZipFile(path) as z:
            for name in names:
                try:
                    info = z.getinfo(f"{name}.npy")
                except KeyError:
                    continue
                with z.open(info) as f:
                    version = np.lib.format.read_magic(f)
                    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                                   else np.lib.format.read_array_header_2_0)
                    shape, _, dtype = read_header(f)
                    header_bytes = f.tell()
                if dtype.hasobject:
                    continue  # refused below without being read (allow_pickle=False)
                claimed = int(np.prod(shape, dtype=object)) * dtype.itemsize
                held = info.file_size - header_bytes
                if claimed != held:
                    raise DatasetError(
                        f"{path}: array '{name}' claims shape {tuple(shape)} of {dtype} ({claimed:,} bytes) but the "
                        f"file holds {held:,} bytes for it: corrupt or truncated"
                    )
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return  # np.load below names the problem


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
        if zipfile.is_zipfile(path):
            _check_member_sizes(path, ("x", "y"))
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
        except MemoryError as exc:
            raise DatasetError(f"{path}: too large to load into memory") from exc
        if not np.issubdtype(x.dtype, np.floating) and not np.issubdtype(x.dtype, np.integer):
            raise DatasetError(f"{path}: x has dtype {x.dtype}, expected float32")
        if x.ndim < 2 or len(x) == 0:
            raise DatasetError(f"{path}: x must be (N, …) with N >= 1, got shape {x.shape}")
        if need_labels and y is None:
            raise DatasetError(f"{path}: no array 'y' of labels")
        if y is not None:
            if y.shape != (len(x),) or not np.issubdtype(y.dtype, np.integer):
                raise DatasetError(f"{path}: y must be ({len(x)},) integers, got {y.shape} {y.dtype}")
            if len(y) and (y.min() < 0 or y.max() > MAX_LABEL):
                bad = y[(y < 0) | (y > MAX_LABEL)]
                raise DatasetError(f"{path}: y holds {len(bad)} label(s) that are no class index (e.g. {bad[0]}); "
                                   "labels are classes 0, 1, 2, …")
        if not np.all(np.isfinite(x)):
            raise DatasetError(f"{path}: x holds NaN or infinite values")
        return Dataset(x.astype(np.float32), y)

    def check_labels(self, classes: int, what: str) -> None:
        """Every label is a class of a model with `classes` outputs: refuses what would score 0 % silently."""
        if self.y is None or not len(self.y):
            return
        outside = self.y >= classes
        if outside.any():
            raise DatasetError(
                f"{what}: {int(outside.sum())} of {len(self.y)} labels are not classes of this model (it has "
                f"{classes} outputs, classes 0…{classes - 1}; e.g. label {int(self.y[outside][0])})"
            )

    def check_shape(self, shape: tuple[int, ...], what: str) -> None:
        if tuple(self.x.shape[1:]) != tuple(shape):
            raise DatasetError(f"{what}: samples have shape {tuple(self.x.shape[1:])}, the model takes {tuple(shape)}")
