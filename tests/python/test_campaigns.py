"""metaplast.check_campaign / run_campaign / resume_campaign and metaplast.characterize."""

import _thread
import copy
import json
import os
import threading
import time

import pytest

import metaplast

SOURCE = os.environ.get("METAPLAST_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "../.."))

TINY = {
    "campaign": "py-tiny",
    "defaults": {"train": {"tasks": ["mnist", "fashion"], "epochs": 1, "train-limit": 600,
                           "hidden": [32], "threads": 1}},
    "steps": [
        {"id": "sweep", "type": "sweep", "parameter": "mstar", "values": [0, 3],
         "step": {"type": "train"}},
        {"id": "stats", "type": "evaluate", "runs": ["@sweep"]},
    ],
}


def test_check_gives_the_plan_as_objects():
    plan = metaplast.check_campaign(TINY)
    assert [s.id for s in plan.steps] == ["sweep/mstar=0", "sweep/mstar=3", "stats"]
    train = plan.steps[1]
    assert train.type == "train" and train.parameters == {"mstar": 3}
    assert train.options["train-limit"] == 600 and train.dir == "steps/sweep/mstar=3"
    assert plan.host_seconds > 0 and "sweep/mstar=3" in str(plan)
    # A file too: the quick campaign of the repository.
    quick = metaplast.check_campaign(os.path.join(SOURCE, "campaigns/quick.json"))
    assert quick.name == "quick" and quick.steps[0].type == "characterize"


def test_check_refuses_a_bad_campaign_naming_the_json_path():
    bad = copy.deepcopy(TINY)
    bad["steps"][0]["values"] = "not a list"
    with pytest.raises(metaplast.InputError, match="/steps/0"):
        metaplast.check_campaign(bad)
    with pytest.raises(metaplast.InputError, match="dict"):
        metaplast.check_campaign(42)
    with pytest.raises(metaplast.Error, match="nope.json"):
        metaplast.check_campaign("/nope.json")


def test_run_then_interrupt_and_resume(tmp_path):
    out = tmp_path / "run"
    outcome = metaplast.run_campaign(TINY, out)
    assert outcome["status"] == "finished" and outcome["exit_code"] == 0
    state = json.loads((out / "state.json").read_text())
    assert all(step["status"] == "done" for step in state["steps"])
    run = metaplast.open_run(out / "steps/sweep/mstar=3")
    assert run.finished

    # Ctrl-C in the middle of a second run: KeyboardInterrupt, then resume finishes it.
    out2 = tmp_path / "run2"
    longer = copy.deepcopy(TINY)
    longer["defaults"]["train"]["epochs"] = 2
    first_epoch = out2 / "steps/sweep/mstar=0/metrics.csv"

    def interrupt_after_the_first_epoch():
        deadline = time.monotonic() + 120
        while not first_epoch.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        _thread.interrupt_main()  # as Ctrl-C

    watcher = threading.Thread(target=interrupt_after_the_first_epoch)
    watcher.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            metaplast.run_campaign(longer, out2)
    finally:
        watcher.join()
    record = json.loads((out2 / "record.json").read_text())
    assert record["status"] == "interrupted"
    assert metaplast.resume_campaign(out2)["status"] == "finished"


def test_a_failed_step_raises_campaign_failed(tmp_path):
    failing = copy.deepcopy(TINY)
    failing["defaults"]["train"]["data"] = str(tmp_path / "no-data-here")
    with pytest.raises(metaplast.CampaignFailed) as error:
        metaplast.run_campaign(failing, tmp_path / "run")
    assert error.value.dir.endswith("run") and "no-data-here" in str(error.value)


def test_characterize_writes_a_calibration(tmp_path):
    reports = []
    result = metaplast.characterize(device="sim:?seed=7&formed=1", out=str(tmp_path / "char"),
                                    cells=60, cycles=3, read_repeats=0, no_registry=True,
                                    progress=reports.append)
    assert result["cells_measured"] == 60
    assert os.path.isfile(result["calibration"])
    calibration = json.loads(open(result["calibration"]).read())
    # The LCS and one entry per HCS level of the board's table.
    assert len(calibration["hcs_levels"]) == len(result["board_levels"]) - 1
    steps = [r for r in reports if "steps_total" in r]
    assert steps and steps[-1]["steps_done"] == steps[-1]["steps_total"]
    with pytest.raises(metaplast.InputError, match="out"):
        metaplast.characterize(device="sim:?seed=7&formed=1")


def test_characterize_over_tcp_needs_permission(tmp_path, simboard):
    options = dict(device=simboard.address, cells=40, cycles=2, read_repeats=0, no_registry=True)
    with pytest.raises(metaplast.InputError, match="yes"):
        metaplast.characterize(out=str(tmp_path / "refused"), **options)
    result = metaplast.characterize(out=str(tmp_path / "char"), yes=True, **options)
    assert result["cells_measured"] == 40 and os.path.isfile(result["calibration"])
