"""dataset.py: a .npz with float samples `x` (N, …) and integer labels `y` (N,) loads as float32; every
other file is a DatasetError naming the problem (never a pickle executed); limit and check_shape."""

from __future__ import annotations

import pathlib
from pathlib import Path

import numpy as np
import pytest

from tinyrobust.dataset import Dataset
from tinyrobust.errors import BadInputError, DatasetError


def _npz(tmp_path: Path, name: str = "d.npz", **arrays: np.ndarray) -> Path:
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


X = np.arange(24, dtype=np.float64).reshape(4, 3, 2) / 10
Y = np.array([0, 1, 2, 1], np.int64)


def test_loads_x_and_y(tmp_path: Path) -> None:
    ds = Dataset.load(_npz(tmp_path, x=X, y=Y))
    assert ds.x.dtype == np.float32 and ds.x.shape == (4, 3, 2) and len(ds) == 4
    np.testing.assert_allclose(ds.x, X, rtol=1e-6)
    np.testing.assert_array_equal(ds.y, Y)


def test_integer_samples_and_small_integer_labels_are_accepted(tmp_path: Path) -> None:
    ds = Dataset.load(_npz(tmp_path, x=np.ones((2, 5), np.uint8), y=np.array([3, 4], np.int8)))
    assert ds.x.dtype == np.float32 and ds.y.tolist() == [3, 4]


def test_labels_are_optional_only_when_asked(tmp_path: Path) -> None:
    path = _npz(tmp_path, x=X)
    assert Dataset.load(path, need_labels=False).y is None
    with pytest.raises(DatasetError, match="no array 'y' of labels"):
        Dataset.load(path)


def test_missing_x_lists_what_is_there(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"no array 'x' \(found: images, y\)"):
        Dataset.load(_npz(tmp_path, images=X, y=Y))
    with pytest.raises(DatasetError, match=r"no array 'x' \(found: none\)"):
        Dataset.load(_npz(tmp_path, "empty.npz"))


@pytest.mark.parametrize("x", [np.array([["a", "b"], ["c", "d"]]), np.ones((2, 2), bool), np.ones((2, 2), complex)])
def test_non_numeric_x_is_refused(x: np.ndarray, tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=f"x has dtype {x.dtype}, expected float32"):
        Dataset.load(_npz(tmp_path, x=x, y=np.zeros(2, int)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_x_is_refused(bad: float, tmp_path: Path) -> None:
    x = X.copy()
    x[2, 1, 0] = bad
    with pytest.raises(DatasetError, match="x holds NaN or infinite values"):
        Dataset.load(_npz(tmp_path, x=x, y=Y))


@pytest.mark.parametrize("x", [np.zeros(4), np.zeros((0, 3))])
def test_x_needs_a_batch_of_at_least_one(x: np.ndarray, tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"x must be \(N, …\) with N >= 1"):
        Dataset.load(_npz(tmp_path, x=x, y=np.zeros(len(x), int)))


@pytest.mark.parametrize("y", [Y.reshape(4, 1), Y[:3], np.zeros((4, 10)), Y.astype(np.float32)])
def test_wrong_labels_are_refused(y: np.ndarray, tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"y must be \(4,\) integers"):
        Dataset.load(_npz(tmp_path, x=X, y=y))


class _Trap:
    """Unpickling this would create the marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def test_pickled_object_arrays_are_refused_unexecuted(tmp_path: Path) -> None:
    marker = tmp_path / "pickle_ran"
    x = np.empty((2, 1), dtype=object)
    x[0, 0], x[1, 0] = _Trap(marker), 1.0
    path = _npz(tmp_path, x=x, y=np.zeros(2, int))
    with pytest.raises(DatasetError, match="not a readable .npz dataset"):
        Dataset.load(path)
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"", b"not a zip at all"])
def test_files_that_are_not_npz_are_refused(content: bytes, tmp_path: Path) -> None:
    path = tmp_path / "junk.npz"
    path.write_bytes(content)
    with pytest.raises(DatasetError, match="not a readable .npz dataset"):
        Dataset.load(path)


def test_a_truncated_npz_is_a_dataset_error(tmp_path: Path) -> None:
    full = _npz(tmp_path, "full.npz", x=X, y=Y).read_bytes()
    path = tmp_path / "cut.npz"
    path.write_bytes(full[: len(full) // 2])
    with pytest.raises(DatasetError, match="cut.npz: not a readable .npz dataset"):
        Dataset.load(path)


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="absent.npz: not a readable .npz dataset"):
        Dataset.load(tmp_path / "absent.npz")


def test_a_npy_renamed_npz_is_a_dataset_error(tmp_path: Path) -> None:
    path = tmp_path / "x.npy"
    np.save(path, X)
    renamed = path.rename(tmp_path / "x.npz")
    with pytest.raises(DatasetError, match="x.npz"):
        Dataset.load(renamed)


def test_dataset_error_is_bad_input() -> None:
    assert issubclass(DatasetError, BadInputError) and DatasetError.exit_code == 2


def test_limit() -> None:
    ds = Dataset(X.astype(np.float32), Y)
    two = ds.limit(2)
    assert len(two) == 2 and two.y.tolist() == [0, 1]
    np.testing.assert_array_equal(two.x, ds.x[:2])
    assert ds.limit(None) is ds
    assert len(ds.limit(100)) == 4
    unlabelled = Dataset(X.astype(np.float32), None).limit(3)
    assert len(unlabelled) == 3 and unlabelled.y is None


def test_check_shape() -> None:
    ds = Dataset(X.astype(np.float32), Y)
    ds.check_shape((3, 2), "--data")
    ds.check_shape([3, 2], "--data")  # type: ignore[arg-type]
    with pytest.raises(DatasetError, match=r"--data: samples have shape \(3, 2\), the model takes \(2, 3\)"):
        ds.check_shape((2, 3), "--data")
    with pytest.raises(DatasetError, match="the model takes"):
        ds.check_shape((6,), "--data")


def _npz_with_claimed_shape(path: Path, claimed: tuple[int, ...]) -> Path:
    """A real .npz whose x header claims `claimed` while holding two 8×8×1 float32 samples."""
    import io
    import zipfile

    x = np.zeros((2, 8, 8, 1), np.float32)
    header = np.lib.format.header_data_from_array_1_0(x)
    header["shape"] = claimed
    raw = io.BytesIO()
    np.lib.format.write_array_header_1_0(raw, header)
    y = io.BytesIO()
    np.lib.format.write_array(y, np.zeros(2, np.int64))
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("x.npy", raw.getvalue() + x.tobytes())
        z.writestr("y.npy", y.getvalue())
    return path


def test_a_header_claiming_more_than_the_file_holds_is_refused_unread(tmp_path: Path) -> None:
    """Before: np.load tried to allocate 2^40 samples (MemoryError, an internal error)."""
    with pytest.raises(DatasetError, match=r"claims shape \(1099511627776, 8, 8, 1\).*holds 512 bytes"):
        Dataset.load(_npz_with_claimed_shape(tmp_path / "huge.npz", (2**40, 8, 8, 1)))
    assert len(Dataset.load(_npz_with_claimed_shape(tmp_path / "ok.npz", (2, 8, 8, 1)))) == 2


@pytest.mark.parametrize("label", [-1, 2**62])
def test_labels_that_are_no_class_index_are_refused(label: int, tmp_path: Path) -> None:
    """Before: accepted, and accuracy 0 % with exit 0."""
    y = np.array([0, 1, label, 1], np.int64)
    with pytest.raises(DatasetError, match=f"1 label\\(s\\) that are no class index \\(e.g. {label}\\)"):
        Dataset.load(_npz(tmp_path, x=X, y=y))


def test_check_labels() -> None:
    ds = Dataset(X.astype(np.float32), np.array([0, 1, 2, 9]))
    ds.check_labels(10, "--data")
    with pytest.raises(DatasetError, match="1 of 4 labels are not classes of this model \\(it has 3 outputs"):
        ds.check_labels(3, "--data")
    Dataset(X.astype(np.float32), None).check_labels(3, "--data")  # no labels, nothing to check
