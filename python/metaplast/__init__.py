"""metaplast from Python: boards, training runs and their records (docs/python.md).

The same C++ code as the command line, so the same options, limits, safety rules and messages:

    import metaplast
    with metaplast.Board("sim:?seed=1&formed=1") as board:
        g = board.read()                      # float64 (128, 128), microsiemens
        result = board.program([0, 1], [0, 1], levels=[3, 5])
    summary = metaplast.train(epochs=1, train_limit=2000, out="runs/py1")
    run = metaplast.open_run("runs/py1")

Use it with PYTHONPATH=build/python after the build, or install it into a virtual environment
with `cmake --install build --component python --prefix "$VIRTUAL_ENV"`.
"""

import csv as _csv
import json as _json
import os as _os
import re as _re

import numpy as _np

from ._metaplast import (  # noqa: F401  (the public names)
    AddressError,
    Board,
    BoardError,
    Error,
    InputError,
    LimitError,
    LinkError,
    OperationError,
    ProtocolError,
    RebootedError,
    RunAborted,
    StateError,
    Training,
    __version__,
    characterize,
)
from . import _metaplast

__all__ = [
    "AddressError", "Board", "BoardError", "CampaignFailed", "Error", "InputError", "LimitError",
    "LinkError", "OperationError", "Plan", "ProtocolError", "RebootedError", "Run", "RunAborted",
    "StateError", "Step", "Training", "characterize", "check_campaign", "open_run",
    "resume_campaign", "run_campaign", "train",
]


def train(progress=None, **options):
    """Train as `metaplast train` does and return the summary (summary.json's content).

    options are the command line's, as keyword arguments: underscores for hyphens
    (train_limit=2000), lists for comma lists (tasks=["mnist", "fashion"]), True for flags
    (yes=True); resume="DIR" continues a stopped run. The run trains on a thread of its own with
    the GIL released; progress(report) is called after every epoch (see Training.wait).

    Ctrl-C (KeyboardInterrupt) stops the run after the epoch's checkpoint, then raises
    KeyboardInterrupt: continue with train(resume=DIR). A second one aborts after the step in
    flight (the previous checkpoint is intact).

    Raises InputError for a bad option (the command line's message), and what the run raises.
    """
    return Training(**options).wait(progress)


# Datasets of an epoch snapshot (docs/run-records.md, "snapshots/epoch_NNNN.h5").
_SNAPSHOT_DATASETS = [
    "conductance_us", "target_conductance_us", "target_level", "layer", "programming_count",
    "verify/row", "verify/col", "verify/target_level", "verify/pulses",
    "verify/final_conductance_us", "verify/passed", "verify/batch",
]
_SNAPSHOT_STRINGS = ["run_id", "chip_id", "board_serial", "task"]
_SNAPSHOT_NUMBERS = ["board_boot_id", "epoch", "epoch_index", "band_us"]


def _read_csv_columns(path):
    """A CSV file with a header line as {column: numpy array} (numbers as float64, else str)."""
    with open(path, newline="") as f:
        lines = [line for line in f if not line.startswith("#")]
    rows = list(_csv.reader(lines))
    if not rows:
        return {}
    header, body = rows[0], rows[1:]
    columns = {}
    for i, name in enumerate(header):
        values = [row[i] if i < len(row) else "" for row in body]
        try:
            columns[name] = _np.array([float(v) for v in values], dtype=_np.float64)
        except ValueError:
            columns[name] = _np.array(values, dtype=str)
    return columns


class Run:
    """A training run's folder, read (docs/run-records.md).

    Attributes: path; config (config.json), summary (summary.json, None while the run is not
    finished), metrics (metrics.csv as a dict of arrays: task_trained, epoch, task_evaluated,
    split, accuracy, loss), cell_writes (cell_writes.csv as row, col, writes arrays, or None),
    snapshots (the epoch snapshots' files, in epoch order). snapshot(i) reads one.
    """

    def __init__(self, path):
        self.path = _os.fspath(path)
        config_file = _os.path.join(self.path, "config.json")
        if not _os.path.isfile(config_file):
            raise InputError(
                f"open_run({self.path!r}): no config.json there; is this a metaplast run folder "
                "(the --out of `metaplast train`, or a campaign's steps/<id>)?")
        self.config = self._json("config.json")
        self.summary = self._json("summary.json") if self._has("summary.json") else None
        self.metrics = _read_csv_columns(self._file("metrics.csv")) \
            if self._has("metrics.csv") else {}
        self.cell_writes = _read_csv_columns(self._file("cell_writes.csv")) \
            if self._has("cell_writes.csv") else None
        snapshot_dir = self._file("snapshots")
        names = sorted(n for n in _os.listdir(snapshot_dir)
                       if _re.fullmatch(r"epoch_\d+\.h5", n)) \
            if _os.path.isdir(snapshot_dir) else []
        self.snapshots = [_os.path.join(snapshot_dir, n) for n in names]

    @property
    def finished(self):
        """Whether the run wrote its summary (it ended, not stopped or killed)."""
        return self.summary is not None

    def accuracy(self, task_trained, task_evaluated, split="test"):
        """Accuracy of task_evaluated after every epoch of task_trained, as (epochs, accuracies)."""
        m = self.metrics
        if not m:
            return _np.array([]), _np.array([])
        keep = (m["task_trained"] == task_trained) & (m["task_evaluated"] == task_evaluated) \
            & (m["split"] == split)
        return m["epoch"][keep].astype(int), m["accuracy"][keep]

    def snapshot(self, index):
        """Epoch snapshot `index` (into snapshots) as a dict of float64 arrays by dataset path
        (conductance_us (128, 128) with NaN where no weight, target_level, layer,
        programming_count, verify/...), and "attributes" (task, epoch, epoch_index, ...)."""
        return _metaplast._read_h5(self.snapshots[index], _SNAPSHOT_DATASETS, _SNAPSHOT_STRINGS,
                                   _SNAPSHOT_NUMBERS)

    def _file(self, name):
        return _os.path.join(self.path, name)

    def _has(self, name):
        return _os.path.isfile(self._file(name))

    def _json(self, name):
        with open(self._file(name)) as f:
            return _json.load(f)

    def __repr__(self):
        state = "finished" if self.finished else "not finished"
        return f"<metaplast.Run {self.path} ({state}, {len(self.snapshots)} snapshots)>"


def open_run(path):
    """Read the training run in folder `path` (see Run). Raises InputError if it is not one."""
    return Run(path)


# ---------------------------------------------------------------------------------------------
# Campaigns (docs/campaigns.md)

class CampaignFailed(Error):
    """A campaign step failed. The run folder records it (state.json); fix the cause and continue
    with resume_campaign(dir). Attributes: dir, message."""

    def __init__(self, message, dir):
        super().__init__(message)
        self.message = message
        self.dir = dir


class Step:
    """One planned step of a campaign (plan.json's entry): id, type, top (the top-level step it
    comes from), dir (its folder in the run), options (resolved, defaults filled in), parameters
    (swept or repeated values), links (values taken from earlier steps) and estimate
    (host_seconds, device_seconds, device_operations or None where not estimated, and for a train
    step with a board layer board_store True and link_seconds {"uart", "tcp"};
    docs/campaigns.md, "Board time")."""

    def __init__(self, entry):
        self.id = entry["id"]
        self.type = entry["type"]
        self.top = entry["top"]
        self.dir = entry["dir"]
        self.json_path = entry["json_path"]
        self.options = entry["options"]
        self.parameters = entry["parameters"]
        self.links = entry["links"]
        self.estimate = entry["estimate"]

    def __repr__(self):
        return f"<metaplast.Step {self.id} ({self.type})>"


class Plan:
    """A checked campaign's plan (what `metaplast campaign check` prints): name, source, steps
    (Step objects in execution order), warnings, station (the station file's content, when one
    was given), host_seconds (the estimate's total) and text (the printed plan; str(plan))."""

    def __init__(self, plan):
        self.name = plan["campaign"]
        self.source = plan["source"]
        self.steps = [Step(entry) for entry in plan["steps"]]
        self.warnings = plan["warnings"]
        self.station = plan.get("station")
        self.text = plan["text"]

    @property
    def host_seconds(self):
        """The host time the plan's steps are estimated to take, in seconds."""
        return sum(step.estimate["host_seconds"] for step in self.steps)

    def __str__(self):
        return self.text

    def __repr__(self):
        return f"<metaplast.Plan {self.name}: {len(self.steps)} steps>"


def check_campaign(campaign, station=None):
    """Check a campaign (a dict, as the JSON file holds it, or a file name) without running
    anything and return its Plan. Raises InputError naming the JSON path of a bad value."""
    return Plan(_metaplast._check_campaign(_campaign_arg(campaign), station))


def run_campaign(campaign, out, *, station=None, jobs=1, yes=False, settings=None, record=False,
                 quiet=True):
    """Run a campaign (a dict or a file name) into the new folder `out`, as `metaplast campaign
    run` does, and return {status, message, dir, exit_code}.

    station: station file; jobs: units run at once as child processes; yes: permission to pulse
    a board that is not simulated; settings: board settings by key over the station's and the
    steps'; record: record every board frame; quiet: log to out/campaign.log only.
    Ctrl-C stops after the epoch or batch in flight (a second one aborts), then raises
    KeyboardInterrupt: continue with resume_campaign(out). A failed step raises CampaignFailed.
    """
    return _outcome(_metaplast._run_campaign(_campaign_arg(campaign), _os.fspath(out), station,
                                             jobs, yes, settings, record, quiet))


def resume_campaign(dir, *, station=None, jobs=1, yes=False, settings=None, record=False,
                    quiet=True):
    """Continue the campaign run in `dir` (done steps are skipped), as `metaplast campaign
    resume`; the same options, result and errors as run_campaign."""
    return _outcome(_metaplast._resume_campaign(_os.fspath(dir), station, jobs, yes, settings,
                                                record, quiet))


def _campaign_arg(campaign):
    if isinstance(campaign, dict):
        return campaign
    try:
        return _os.fspath(campaign)
    except TypeError:
        raise InputError(f"campaign: a {type(campaign).__name__}; expected a dict (the campaign "
                         "document, as its JSON file holds it) or a file name") from None


def _outcome(outcome):
    if outcome["status"] == "failed":
        raise CampaignFailed(outcome["message"], outcome["dir"])
    return outcome
