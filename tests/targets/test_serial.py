"""Serial target: the shared ProtocolTarget batch logic, driven over pyserial's socket:// against the
in-process device double."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from tinyrobust.targets.base import as_batch, as_sample
from tinyrobust.targets.serial_target import SerialTarget

sys.path.insert(0, str(Path(__file__).parent))
from test_protocol import INPUT_BYTES, LAYER_SIZES, OUTPUT_BYTES, FakeDevice, _count, _layer_output  # noqa: E402


def test_serial_target_batches_in_order() -> None:
    dev = FakeDevice()
    try:
        x = np.random.default_rng(1).integers(-128, 128, size=(9, INPUT_BYTES), dtype=np.int8)
        with SerialTarget(dev.url(), timeout_s=0.5) as t:
            assert t.counter_unit == "emulated instructions"
            seen: list[int] = []
            y, counts = t.infer_batch(x, progress=seen.append)
            assert sum(seen) == 9
            for row, out, cnt in zip(x, y, counts, strict=True):
                assert out.tobytes() == _layer_output(row.tobytes(), 2) and cnt == _count(row.tobytes())
            assert y.dtype == np.int8 and y.shape == (9, OUTPUT_BYTES) and counts.dtype == np.int64
            assert t.profile(x[0]) == [_count(x[0].tobytes()) + i for i in range(len(LAYER_SIZES))]
            assert t.layer_output(x[0].tobytes(), 1) == _layer_output(x[0].tobytes(), 1)
            assert t.batch_stats is not None and t.batch_stats.samples == 9
            assert t.batch_stats.as_dict()["bytes_per_s"] > 0
            assert t.link_stats.requests >= 12
        assert not t._port.is_open
    finally:
        dev.close()


def test_board_reset_mid_run_is_resynchronised() -> None:
    """A board that resets mid-batch (its HELLO announcement appears) loses the request in flight; the
    client re-sends it and the batch completes with every answer right."""
    dev = FakeDevice([None] * 5 + ["reset"])  # HELLO, then the 5th INFER's answer is a reset instead
    try:
        x = np.random.default_rng(2).integers(-128, 128, size=(12, INPUT_BYTES), dtype=np.int8)
        with SerialTarget(dev.url(), timeout_s=0.5) as t:
            y, _ = t.infer_batch(x)
            link = t.batch_stats.as_dict()
        assert [out.tobytes() for out in y] == [_layer_output(row.tobytes(), 2) for row in x]
        assert dev.resets == 1 and link["device_resets"] == 1 and link["timeouts"] == 0
    finally:
        dev.close()


def test_a_port_that_cannot_be_opened_is_a_target_error() -> None:
    import socket

    from tinyrobust.errors import TargetError

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(TargetError, match="cannot open serial port"):
        SerialTarget(f"socket://127.0.0.1:{port}")


def test_batch_input_checks() -> None:
    with pytest.raises(TypeError, match="int8"):
        as_batch(np.zeros((2, 4), dtype=np.float32), 4)
    with pytest.raises(ValueError, match="takes 5"):
        as_batch(np.zeros((2, 4), dtype=np.int8), 5)
    assert as_batch(np.zeros((2, 2, 2), dtype=np.int8), 4).shape == (2, 4)
    assert as_sample(np.arange(4, dtype=np.int8), 4) == bytes([0, 1, 2, 3])
    with pytest.raises(ValueError):
        as_sample(b"abc", 4)
