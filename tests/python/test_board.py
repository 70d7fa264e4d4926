"""metaplast.Board against the simulated board: in-process (sim:) and over TCP (metaplast-simboard)."""

import json
import os

import numpy as np
import pytest

import metaplast
from conftest import python_thread_progress

SIM = "sim:?seed=1&formed=1"
SAFE_STATE_OPCODE = 0x20  # docs/protocol.md 4.9


@pytest.fixture(params=["in-process", "tcp"])
def board(request):
    """A formed simulated board: in-process (sim:), and as a metaplast-simboard process over TCP
    (which needs yes=True to pulse: it is not known to be simulated)."""
    if request.param == "in-process":
        b = metaplast.Board(SIM)
    else:
        b = metaplast.Board(request.getfixturevalue("simboard").address, yes=True)
    with b:
        yield b


def sent_opcodes(record_file):
    """Opcodes the host sent, in order, from a frame recording (docs/protocol.md, header byte 3)."""
    opcodes = []
    with open(record_file) as f:
        for line in f.readlines()[1:]:
            frame = json.loads(line)
            if frame["dir"] == "tx":
                opcodes.append(int(frame["frame"][6:8], 16))
    return opcodes


def test_identify_and_settings(board):
    info = board.info
    assert (info["rows"], info["cols"]) == (128, 128)
    assert info["levels"][0]["target_conductance_us"] < info["levels"][-1][
        "target_conductance_us"]
    assert "PROGRAM_VERIFY" in info["capabilities"]
    assert board.state == "active"
    assert board.identify()["boot_id"] == info["boot_id"]
    assert board.settings["read_voltage_v"] == pytest.approx(0.2)
    assert "read_voltage_v" in metaplast.Board.setting_keys()


def test_whole_array_read_shapes_and_dtypes(board):
    g = board.read()
    assert g.shape == (128, 128) and g.dtype == np.float64
    g2, codes = board.read(with_codes=True)
    assert codes.shape == (128, 128) and codes.dtype == np.uint16
    assert g2.shape == (128, 128)
    # Formed cells sit in the LCS: a few uS, none negative, not all equal.
    assert 0 <= np.median(g) < 30 and g.std() > 0
    cells = board.read([0, 5, 127], [0, 6, 127])
    assert cells.shape == (3,) and cells.dtype == np.float64


def test_program_and_verify_gives_per_cell_results(board):
    rows = np.arange(10)
    cols = np.full(10, 3)
    levels = np.array([1, 2, 3, 4, 5, 1, 2, 3, 4, 5])
    before = board.counters(rows, cols)
    result = board.program(rows, cols, levels, band_us=5.0)
    assert result["conductance_us"].dtype == np.float64
    assert result["code"].dtype == np.uint16
    assert result["pulses"].dtype == np.uint32
    assert result["in_band"].dtype == np.bool_ and result["in_band"].shape == (10,)
    assert result["in_band"].all()
    targets = np.array([board.info["levels"][k]["target_conductance_us"] for k in levels])
    assert np.abs(result["conductance_us"] - targets).max() <= 5.0
    # What the board holds now is what the result says (re-read within the read noise).
    assert np.abs(board.read(rows, cols) - result["conductance_us"]).max() < 3.0
    after = board.counters(rows, cols)
    spent = (after["set_pulses"] + after["reset_pulses"]) - (
        before["set_pulses"] + before["reset_pulses"])
    assert (spent == result["pulses"]).all()
    whole = board.counters()
    assert whole["set_pulses"].shape == (128, 128)
    assert whole["set_pulses"].dtype == np.uint32
    assert whole["set_pulses"][rows, cols].sum() == after["set_pulses"].sum()
    # One level for every cell.
    assert board.program([20, 21], [20, 21], 0)["in_band"].all()


def test_program_to_conductance_targets_restores_the_settings(board):
    rows, cols = np.arange(6), np.full(6, 9)
    targets = np.array([30.0, 45.0, 70.0, 30.0, 45.0, 70.0])
    result = board.program(rows, cols, targets_us=targets, band_us=4.0)
    assert result["in_band"].all()
    assert np.abs(result["conductance_us"] - targets).max() <= 4.0
    assert (result["target_us"] == targets).all()
    assert list(result["level"]) == [1, 2, 3, 1, 2, 3]
    # The level table was this call's only: the board's own is in force again.
    assert board.settings["level_targets_us"] == []
    assert board.info["levels"][1]["target_conductance_us"] == pytest.approx(20, abs=1)
    with pytest.raises(metaplast.InputError, match="at most 15"):
        board.program(np.arange(16), np.zeros(16, int), targets_us=np.arange(30.0, 46.0))
    with pytest.raises(metaplast.InputError, match="LCS"):
        board.program([0], [0], targets_us=0.5)
    with pytest.raises(metaplast.InputError, match="one of the two"):
        board.program([0], [0])
    with pytest.raises(metaplast.InputError, match="level 2.5"):
        board.program([0], [0], 2.5)


def test_single_pulses_and_configure(board):
    board.reset([7], [7])
    low = board.read([7], [7])[0]
    board.set([7], [7], level=3)
    assert board.read([7], [7])[0] > low + 10
    settings = board.configure(read_voltage_v=0.15)
    assert settings["read_voltage_v"] == pytest.approx(0.15)
    assert board.state == "active"


def test_settings_given_at_open_are_in_force():
    with metaplast.Board(SIM, settings={"read_voltage_v": 0.1, "set_pulse_width_ns": 200}) as b:
        assert b.settings["read_voltage_v"] == pytest.approx(0.1)
        assert b.settings["set_pulse_width_ns"] == pytest.approx(200)


def test_bad_input_raises_the_command_lines_errors(tmp_path):
    with pytest.raises(metaplast.AddressError, match="tcp:HOST:PORT|accepted"):
        metaplast.Board("nonsense:xyz")
    with pytest.raises(metaplast.InputError, match="no board"):
        metaplast.Board()
    with pytest.raises(metaplast.InputError, match="no_such_setting"):
        metaplast.Board(SIM, settings={"no_such_setting": 1})
    # Beyond the station's limits: refused before anything is sent.
    station = tmp_path / "station.json"
    station.write_text(json.dumps({"station": "py", "limits": {"max_read_voltage_v": 0.2}}))
    with pytest.raises(metaplast.LimitError, match="read_voltage"):
        metaplast.Board(SIM, station=str(station), settings={"read_voltage_v": 0.3})
    with metaplast.Board(SIM, station=str(station)) as board:
        with pytest.raises(metaplast.LimitError):
            board.configure(read_voltage_v=0.3)
        assert board.settings["read_voltage_v"] == pytest.approx(0.2)  # unchanged
        with pytest.raises(metaplast.InputError, match="outside"):
            board.read([200], [0])
        with pytest.raises(metaplast.InputError, match="levels"):
            board.program([0], [0], 99)
        with pytest.raises(metaplast.InputError, match="same length"):
            board.read([0, 1], [0])
        with pytest.raises(metaplast.InputError, match="together"):
            board.read([0, 1])
        with pytest.raises(metaplast.InputError, match="whole number"):
            board.read([1.5], [0])
    # Every error is a metaplast.Error, and the input ones are ValueErrors too.
    assert issubclass(metaplast.LimitError, ValueError)
    assert issubclass(metaplast.LinkError, metaplast.Error)


def test_context_manager_leaves_the_board_safe_on_an_exception(tmp_path):
    record = tmp_path / "frames.jsonl"
    with pytest.raises(ZeroDivisionError):
        with metaplast.Board(SIM, record=str(record)) as board:
            board.read([0], [0])
            1 / 0
    assert sent_opcodes(record)[-1] == SAFE_STATE_OPCODE
    with pytest.raises(metaplast.StateError, match="closed"):
        board.read()
    board.close()  # idempotent


def test_over_tcp_with_permission(simboard):
    with metaplast.Board(simboard.address) as board:
        assert board.read().shape == (128, 128)  # reading needs no permission
        with pytest.raises(metaplast.InputError, match="yes"):
            board.program([0], [0], 2)
    with metaplast.Board(simboard.address, yes=True) as board:
        assert board.program([0, 1], [0, 1], 2)["in_band"].all()
        stats = board.link_stats()
        assert stats["frames_sent"] > 0 and stats["bytes_read"] > 0


def test_a_reboot_raises_rebooted_error_and_configure_recovers():
    with metaplast.Board("sim:?seed=1&formed=1&reboot_at=12", settings={"read_voltage_v": 0.15}) \
            as board:
        with pytest.raises(metaplast.RebootedError) as error:
            for _ in range(20):
                board.read([0], [0])
        assert error.value.old_boot_id != error.value.new_boot_id
        assert board.state == "safe"
        assert board.configure()["read_voltage_v"] == pytest.approx(0.15)  # applied again
        assert board.state == "active" and board.read([0], [0]).shape == (1,)


def test_dead_link_raises_link_error(simboard):
    board = metaplast.Board(simboard.address)
    board.read([0], [0])
    simboard.kill()
    with pytest.raises(metaplast.LinkError):
        board.read()
    board.close()
    port = simboard.port  # nothing listens there any more
    with pytest.raises(metaplast.LinkError):
        metaplast.Board(f"tcp:127.0.0.1:{port}")


def test_board_calls_release_the_gil():
    with metaplast.Board(SIM) as board:
        with python_thread_progress() as ticks:
            for _ in range(3):
                board.read()
    assert ticks[0] > 1000


def test_help_is_useful():
    doc = metaplast.Board.__doc__
    assert "context manager" in doc and "microsiemens" in doc
    assert "band_us" in metaplast.Board.program.__doc__
    # Every public name, and every public method and property of the public classes, has a
    # docstring (help() shows them).
    for name in metaplast.__all__:
        obj = getattr(metaplast, name)
        assert obj.__doc__ and obj.__doc__.strip(), name
        if isinstance(obj, type):
            for attr, member in vars(obj).items():
                if attr.startswith("_") or not (callable(member) or isinstance(member, property)
                                                or type(member).__name__ == "property"):
                    continue
                assert getattr(member, "__doc__", None), f"{name}.{attr}"
    assert os.path.basename(metaplast.__file__) == "__init__.py"


def test_a_station_file_names_the_board(tmp_path, simboard):
    station = tmp_path / "station.json"
    station.write_text(json.dumps({
        "station": "bench 1",
        "instruments": {"array": {"type": "array-board", "address": simboard.address}},
        "limits": {"max_read_voltage_v": 0.25}}))
    with metaplast.Board(station=str(station)) as board:
        assert board.address == simboard.address
        assert board.station_limits["max_read_voltage_v"] == pytest.approx(0.25)
        assert board.read().shape == (128, 128)
        with pytest.raises(metaplast.InputError, match="allow_pulses"):
            board.program([0], [0], 1)  # neither yes=True nor "allow_pulses" in the station


def test_a_pseudo_terminal_is_refused_with_what_to_do(pty_simboard):
    # The serial driver reaches a pty only through the executables' ioctl() (docs/python.md).
    with pytest.raises(metaplast.LinkError, match="pseudo-terminal.*tcp:"):
        metaplast.Board(pty_simboard.address)
