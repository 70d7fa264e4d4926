"""metaplast.train / Training / open_run: small runs on the real datasets (data/, from the set-up)."""

import _thread
import os

import numpy as np
import pytest

import metaplast
from conftest import python_thread_progress

# A small run: a few seconds per epoch on one thread.
SMALL = dict(tasks=["mnist", "fashion"], epochs=2, train_limit=1500, hidden=[64], batch=100,
             threads=1, seed=3)


def test_train_returns_the_summary_and_calls_progress(tmp_path):
    reports = []
    summary = metaplast.train(progress=reports.append, out=str(tmp_path / "run"), **SMALL)
    assert summary["status"] == "finished"
    assert set(summary["after_task"]) == {"mnist", "fashion"}
    assert [(r["task"], r["epoch"]) for r in reports] == [
        ("mnist", 1), ("mnist", 2), ("fashion", 1), ("fashion", 2)]
    assert {e["task"] for e in reports[-1]["evaluations"]} == {"mnist", "fashion"}
    assert 0.3 < summary["after_task"]["mnist"]["mnist"] <= 1.0

    run = metaplast.open_run(tmp_path / "run")
    assert run.finished and run.summary["after_task"] == summary["after_task"]
    assert run.config["options"]["epochs"] == 2
    assert run.metrics["accuracy"].dtype == np.float64
    epochs, accuracy = run.accuracy("fashion", "mnist")
    assert list(epochs) == [1, 2]
    assert accuracy[-1] == pytest.approx(summary["after_task"]["fashion"]["mnist"], abs=1e-4)


def test_bad_options_raise_input_error(tmp_path):
    with pytest.raises(metaplast.InputError, match="no_such_option|no-such-option"):
        metaplast.train(no_such_option=1, out=str(tmp_path / "a"))
    with pytest.raises(metaplast.InputError, match="epochs"):
        metaplast.train(epochs="many", out=str(tmp_path / "b"))
    with pytest.raises(metaplast.InputError, match="rule"):
        metaplast.train(rule="nonsense", out=str(tmp_path / "c"), **SMALL)
    with pytest.raises(metaplast.InputError, match="config.json"):
        metaplast.open_run(tmp_path)
    # A failure of the run itself (here: no dataset there) is a metaplast.Error too.
    with pytest.raises(metaplast.OperationError, match="no-data"):
        metaplast.train(data=str(tmp_path / "no-data"), out=str(tmp_path / "d"), **SMALL)


def test_training_releases_the_gil(tmp_path):
    with python_thread_progress() as ticks:
        metaplast.train(out=str(tmp_path / "run"), **dict(SMALL, tasks=["mnist"], epochs=1))
    assert ticks[0] > 10000


def test_keyboard_interrupt_leaves_a_resumable_run(tmp_path):
    out = str(tmp_path / "run")

    def interrupt_after_first_epoch(report):
        if report["epoch"] == 1 and report["task"] == "mnist":
            _thread.interrupt_main()  # as Ctrl-C: SIGINT's handler raises in the main thread

    with pytest.raises(KeyboardInterrupt):
        metaplast.train(progress=interrupt_after_first_epoch, out=out, **SMALL)
    run = metaplast.open_run(out)
    assert not run.finished
    assert os.path.isfile(os.path.join(out, "checkpoint.bin"))
    trained = set(zip(run.metrics["task_trained"], run.metrics["epoch"].astype(int)))
    assert ("mnist", 1) in trained and ("fashion", 2) not in trained

    summary = metaplast.train(resume=out)
    assert summary["status"] == "finished"
    # The same numbers as an uninterrupted run of the same options.
    straight = metaplast.train(out=str(tmp_path / "straight"), **SMALL)
    assert summary["after_task"] == straight["after_task"]


def test_a_raising_callback_stops_the_run_and_raises(tmp_path):
    def fail(report):
        raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        metaplast.train(progress=fail, out=str(tmp_path / "run"), **SMALL)
    assert not metaplast.open_run(tmp_path / "run").finished


def test_hybrid_run_snapshots_read_as_arrays(tmp_path):
    out = str(tmp_path / "hybrid")
    metaplast.train(device="sim:?seed=1&formed=1", out=out,
                    **dict(SMALL, tasks=["mnist"], epochs=1, train_limit=600))
    run = metaplast.open_run(out)
    assert len(run.snapshots) == 1
    snap = run.snapshot(0)
    assert snap["conductance_us"].shape == (128, 128)
    placed = ~np.isnan(snap["conductance_us"])
    assert placed.sum() == 64 * 10  # the output layer's weights, one device each
    assert snap["attributes"]["task"] == "mnist" and snap["attributes"]["epoch"] == 1
    assert run.cell_writes is not None and run.cell_writes["writes"].sum() > 0


def test_hybrid_run_over_tcp(tmp_path, simboard):
    out = str(tmp_path / "tcp")
    with pytest.raises(metaplast.InputError, match="yes"):
        metaplast.train(device=simboard.address, out=out, **dict(SMALL, tasks=["mnist"]))
    summary = metaplast.train(device=simboard.address, yes=True, out=out,
                              **dict(SMALL, tasks=["mnist"], epochs=1, train_limit=600))
    assert summary["status"] == "finished"
    assert summary["writes"]["max_per_cell"] > 0
    assert len(metaplast.open_run(out).snapshots) == 1
