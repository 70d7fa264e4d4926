"""The array board as a PyMeasure instrument (docs/python.md, "PyMeasure").

    from metaplast.pymeasure import ArrayBoard
    board = ArrayBoard("sim:?seed=1&formed=1")
    board.read_voltage = 0.15          # a PyMeasure property: validated, then configured
    g = board.read_array()             # float64 (128, 128), microsiemens
    board.shutdown()                   # safe state, link closed

Every board setting of the command line is a property named as its key without the unit
(read_voltage for read_voltage_v, set_pulse_width for set_pulse_width_ns, ...), in the key's unit.
Its validator refuses what the value can never be (negative, beyond what the field holds, a
fraction where a whole number is due); the station's and the board's limits are then checked by
metaplast before anything is sent (metaplast.LimitError). The level table is set with
set_level_table(gates_v, targets_us).

The properties talk to the board through BoardAdapter, a PyMeasure Adapter whose commands are
"SETTING? <key>" and "SETTING <key> <value>", so PyMeasure's own machinery (Instrument.control,
validators, values()) drives them as it drives a SCPI instrument.
"""

import numpy as np
from pymeasure.adapters import Adapter
from pymeasure.instruments import Instrument
from pymeasure.instruments.validators import strict_range

from . import Board, InputError

__all__ = ["ArrayBoard", "BoardAdapter"]


class BoardAdapter(Adapter):
    """PyMeasure Adapter over a metaplast.Board: "SETTING? key" answers the setting in force,
    "SETTING key value" configures it (checked against the limits first)."""

    def __init__(self, board):
        super().__init__()
        self.board = board
        self._reply = None

    def write(self, command):
        verb, _, rest = command.strip().partition(" ")
        if verb == "SETTING?":
            self._reply = repr(self._setting(rest)[1])
        elif verb == "SETTING":
            key, _, text = rest.partition(" ")
            field, _ = self._setting(key)
            value = float(text)
            self.board.configure(**{key: int(value) if field["integer"] else value})
        else:
            raise InputError(f"BoardAdapter: unknown command {command!r} "
                             "(SETTING? <key> or SETTING <key> <value>)")

    def read(self):
        if self._reply is None:
            raise InputError("BoardAdapter: nothing to read (send SETTING? <key> first)")
        reply, self._reply = self._reply, None
        return reply

    def _setting(self, key):
        field = Board.setting_keys().get(key)
        if field is None or field["list"]:
            raise InputError(f"BoardAdapter: {key!r} is not a board setting with one value "
                             f"(known: {', '.join(sorted(Board.setting_keys()))})")
        return field, self.board.settings[key]


def _property_name(key):
    for unit in ("_v", "_ns", "_ms", "_us"):
        if key.endswith(unit):
            return key[: -len(unit)]
    return key


def _add_setting_properties(cls):
    """One Instrument.control per single-valued board setting, from the settings table."""
    for key, field in Board.setting_keys().items():
        if field["list"]:
            continue
        unit = f" ({field['unit']})" if field["unit"] else ""
        doc = f"{field['meaning']}{unit}. Board setting {key} (command line {field['option']})."
        control = Instrument.control(
            f"SETTING? {key}", f"SETTING {key} %r", doc,
            validator=strict_range, values=[0, field["maximum"]],
            set_process=(lambda v: int(v) if float(v).is_integer() else v)
            if field["integer"] else float)
        setattr(cls, _property_name(key), control)
    return cls


@_add_setting_properties
class ArrayBoard(Instrument):
    """The 128 x 128 array test board as a PyMeasure Instrument.

    ArrayBoard(address, station=None, yes=False, settings=None, name=...) opens the board as
    metaplast.Board does (same addresses, station file, permission rule and settings). The
    settings are properties (see the module's doc); reads and programming return NumPy arrays.
    shutdown() leaves the board in its safe state and closes the link.
    """

    def __init__(self, address, station=None, yes=False, settings=None,
                 name="metaplast array board", **kwargs):
        self.board = Board(address, station=station, yes=yes, settings=settings)
        super().__init__(BoardAdapter(self.board), name, includeSCPI=False, **kwargs)

    @property
    def info(self):
        """What the board reported at identify (see metaplast.Board.info)."""
        return self.board.info

    def read_array(self, with_codes=False):
        """The whole array's conductances, float64 (rows, cols) in uS (with the uint16 codes
        too when with_codes)."""
        return self.board.read(with_codes=with_codes)

    def read_cells(self, rows, cols):
        """Conductances of the given cells (uS), in their order."""
        return self.board.read(np.asarray(rows), np.asarray(cols))

    def program(self, rows, cols, levels, **options):
        """Program-and-verify (see metaplast.Board.program); per-cell result arrays."""
        return self.board.program(rows, cols, levels, **options)

    def set_level_table(self, gates_v, targets_us):
        """Replace the board's level table (SET gate voltage and verify target per level;
        empty lists: the board's own table)."""
        self.board.configure(level_gate_voltages_v=list(gates_v), level_targets_us=list(targets_us))

    def counters(self):
        """Pulse counters of the whole array (uint32 arrays by kind)."""
        return self.board.counters()

    def shutdown(self):
        """Safe state (lines grounded) and close the link."""
        self.board.close()
        super().shutdown()
