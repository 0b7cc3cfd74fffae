"""Datasets: .npz files with `x` (N, …) float32 in the model's input domain and `y` (N,) labels.

A model with several inputs takes `x0`, `x1`, … instead of `x`: one (N, …) array per input, in the
model's input order (Keras' `model.inputs`), all with the same N. `x0` alone is the same as `x`.

Before an array is read, its header is checked against the bytes the file holds: a header that claims
2^40 samples is a corrupt file (one line, exit 2), not a MemoryError. Labels are class indices, so a
negative label or one beyond int32 is refused on load, and one at or above the model's class count
by `check_labels`.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
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


def _input_names(names: list[str]) -> list[str]:
    """x0, x1, … as long as they follow one another (a model's inputs in order), else ["x"]."""
    found: list[str] = []
    while f"x{len(found)}" in names:
        found.append(f"x{len(found)}")
    return found or ["x"]


@dataclass(frozen=True)
class Dataset:
    x: np.ndarray  # input 0 (the only one of most models)
    y: np.ndarray | None
    more_x: tuple[np.ndarray, ...] = ()  # inputs 1, 2, … of a model with several (x1, x2, … in the file)

    def __len__(self) -> int:
        return len(self.x)

    @property
    def inputs(self) -> tuple[np.ndarray, ...]:
        """Every input's samples, in the model's input order."""
        return (self.x, *self.more_x)

    def limit(self, n: int | None) -> Dataset:
        if n is None:
            return self
        return Dataset(self.x[:n], None if self.y is None else self.y[:n], tuple(a[:n] for a in self.more_x))

    @staticmethod
    def load(path: str | Path, *, need_labels: bool = True) -> Dataset:
        path = Path(path)
        if zipfile.is_zipfile(path):
            try:
                with zipfile.ZipFile(path) as z:
                    members = [m.removesuffix(".npy") for m in z.namelist()]
            except (zipfile.BadZipFile, OSError):
                members = []
            _check_member_sizes(path, ("y", *_input_names(members)))
        try:
            loaded = np.load(path, allow_pickle=False)
            if not isinstance(loaded, np.lib.npyio.NpzFile):
                raise DatasetError(f"{path}: a single .npy array, not an .npz dataset with arrays 'x' and 'y'")
            with loaded as f:
                names = _input_names(list(f.files))
                if names != ["x"] and "x" in f:
                    raise DatasetError(f"{path}: holds both 'x' and '{names[0]}': give 'x' (one input) or 'x0', "
                                       "'x1', … (one per input), not both")
                if "x" not in f and names == ["x"]:
                    raise DatasetError(f"{path}: no array 'x' (found: {', '.join(f.files) or 'none'}); a model with "
                                       "several inputs takes 'x0', 'x1', …")
                xs = [np.asarray(f[name]) for name in names]
                y = np.asarray(f["y"]) if "y" in f else None
        except DatasetError:
            raise
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise DatasetError(f"{path}: not a readable .npz dataset ({exc})") from exc
        except MemoryError as exc:
            raise DatasetError(f"{path}: too large to load into memory") from exc
        for name, a in zip(names, xs, strict=True):
            if not np.issubdtype(a.dtype, np.floating) and not np.issubdtype(a.dtype, np.integer):
                raise DatasetError(f"{path}: {name} has dtype {a.dtype}, expected float32")
            if a.ndim < 2 or len(a) == 0:
                raise DatasetError(f"{path}: {name} must be (N, …) with N >= 1, got shape {a.shape}")
            if len(a) != len(xs[0]):
                raise DatasetError(f"{path}: {name} holds {len(a)} samples, {names[0]} holds {len(xs[0])}: every "
                                   "input needs one array entry per sample")
            if not np.all(np.isfinite(a)):
                raise DatasetError(f"{path}: {name} holds NaN or infinite values")
        x = xs[0]
        if need_labels and y is None:
            raise DatasetError(f"{path}: no array 'y' of labels")
        if y is not None:
            if y.shape != (len(x),) or not np.issubdtype(y.dtype, np.integer):
                raise DatasetError(f"{path}: y must be ({len(x)},) integers, got {y.shape} {y.dtype}")
            if len(y) and (y.min() < 0 or y.max() > MAX_LABEL):
                bad = y[(y < 0) | (y > MAX_LABEL)]
                raise DatasetError(f"{path}: y holds {len(bad)} label(s) that are no class index (e.g. {bad[0]}); "
                                   "labels are classes 0, 1, 2, …")
        return Dataset(x.astype(np.float32), y, tuple(a.astype(np.float32) for a in xs[1:]))

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
        """For a single-input model."""
        if self.more_x:
            raise DatasetError(f"{what}: the data holds {len(self.inputs)} inputs (x0…x{len(self.more_x)}), the "
                               "model takes one: give its samples as 'x'")
        if tuple(self.x.shape[1:]) != tuple(shape):
            raise DatasetError(f"{what}: samples have shape {tuple(self.x.shape[1:])}, the model takes {tuple(shape)}")

    def check_inputs(self, inputs: Sequence[tuple[str, tuple[int, ...]]], what: str) -> None:
        """One array per model input (name, shape), in order, each of that input's shape."""
        if len(inputs) == 1:
            self.check_shape(inputs[0][1], what)
            return
        arrays = self.inputs
        if len(arrays) < len(inputs):  # a missing array first: its name says more than a shape would
            k = len(arrays)
            held = "only 'x'" if not self.more_x else "only " + ", ".join(f"'x{i}'" for i in range(len(arrays)))
            raise DatasetError(f"{what}: no array 'x{k}' for the model's input {k} '{inputs[k][0]}' (shape "
                               f"{tuple(inputs[k][1])}); the model has {len(inputs)} inputs, x0…x{len(inputs) - 1}, "
                               f"the data holds {held}")
        for k, (name, shape) in enumerate(inputs):
            if tuple(arrays[k].shape[1:]) != tuple(shape):
                raise DatasetError(f"{what}: x{k} has samples of shape {tuple(arrays[k].shape[1:])}, the model's "
                                   f"input {k} '{name}' takes {tuple(shape)}")
        if len(arrays) > len(inputs):
            raise DatasetError(f"{what}: the data holds {len(arrays)} inputs, the model takes {len(inputs)} "
                               f"(x0…x{len(inputs) - 1})")
