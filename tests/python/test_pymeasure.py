"""metaplast.pymeasure.ArrayBoard: the board as a PyMeasure instrument."""

import numpy as np
import pytest
from pymeasure.instruments import Instrument

import metaplast
from metaplast.pymeasure import ArrayBoard


def test_settings_are_validated_properties():
    board = ArrayBoard("sim:?seed=1&formed=1")
    try:
        assert isinstance(board, Instrument)
        assert board.read_voltage == pytest.approx(0.2)
        board.read_voltage = 0.12
        assert board.read_voltage == pytest.approx(0.12)
        assert board.board.settings["read_voltage_v"] == pytest.approx(0.12)
        board.set_pulse_width = 250
        assert board.set_pulse_width == pytest.approx(250)
        board.tia_range = 1
        assert board.tia_range == 1
        with pytest.raises(ValueError):  # the validator: a value no setting can hold
            board.read_voltage = -1
        with pytest.raises(metaplast.LimitError):  # the station's limit, checked by metaplast
            board.read_voltage = 1.5
        assert board.read_voltage == pytest.approx(0.12)
        assert "Read voltage" in type(board).read_voltage.__doc__ or \
            "read" in type(board).read_voltage.__doc__.lower()
    finally:
        board.shutdown()


def test_reads_return_arrays_and_programming_works():
    board = ArrayBoard("sim:?seed=1&formed=1")
    try:
        g = board.read_array()
        assert g.shape == (128, 128) and g.dtype == np.float64
        result = board.program([1, 2], [1, 2], 4)
        assert result["in_band"].all()
        assert board.read_cells([1, 2], [1, 2]).shape == (2,)
        board.set_level_table([0.916, 1.047, 1.148], [40, 80, 120])
        assert board.board.settings["level_targets_us"] == [40, 80, 120]
        assert board.counters()["set_pulses"].shape == (128, 128)
    finally:
        board.shutdown()
    with pytest.raises(metaplast.StateError):
        board.read_array()
