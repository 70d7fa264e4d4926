"""`--live` on the commands other than train (docs/live.md): a bench measurement's plot in the
page (log axes, units, points pushed as it goes) and its stop action, a characterisation's level
CDFs, and a campaign's steps with its stop and resume. The simulated board, headless Chromium
and the real event stream; see test_live_page.py for the training."""

import json
import os
import tempfile
import time
import urllib.request

import cdp
from test_live_page import LiveRun, chromium, events_until_final, points, post

CAMPAIGNS = os.path.join(os.path.dirname(__file__), "../../campaigns")


def final(seen, kind):
    """The last body of `kind` in an event list."""
    bodies = [body for k, body in seen if k == kind]
    assert bodies, f"no {kind} update in {[k for k, _ in seen]}"
    return bodies[-1]


def test_a_measurement_draws_its_plot_as_it_goes_and_stops_from_the_page():
    out_dir = tempfile.mkdtemp(prefix="metaplast-live-measure-")
    folder = os.path.join(out_dir, "retention")
    # 12 read times up to 2000 s on a board clock 40x the wall clock: about 50 s of reads.
    times = ",".join(str(t) for t in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 1500, 2000))
    run = LiveRun(folder, ["--device", "sim:?seed=3&formed=1&clock=40", "--cells", "64",
                           "--times", times], command=("measure", "retention"))
    page = None
    try:
        page = cdp.Browser(chromium(), run.url)
        page.wait_for("document.getElementById('measurement-plot').dataset.points >= 2", 120)
        early = points(page, "measurement-plot")
        # A measurement's page shows its plot and the link, not a training's panels.
        assert page.evaluate("document.getElementById('accuracy-panel').hidden && "
                             "document.getElementById('map-panel').hidden && "
                             "!document.getElementById('board-panel').hidden")
        labels = page.evaluate(
            "state.plots['measurement-plot'].plot.axes.map(a => a.label)")
        assert labels == ["Time since programming t (s)", "Conductance G (µS)"], labels
        # Both axes are logarithmic (uPlot's distr 3).
        assert page.evaluate("state.plots['measurement-plot'].plot.scales.x.distr") == 3
        assert page.evaluate("state.plots['measurement-plot'].plot.scales.y.distr") == 3
        series = page.evaluate(
            "state.plots['measurement-plot'].plot.series.slice(1).map(s => s.label)")
        assert "level 0" in series and "level 8" in series, series
        # More read times arrive on the same page, pushed.
        page.wait_for(f"document.getElementById('measurement-plot').dataset.points > {early}", 120)
        assert "time point" in page.evaluate("document.getElementById('progress-text').textContent")
        # The stop action stops it after the time point in progress, as a first Ctrl-C.
        assert post(f"{run.base}/api/stop") == 403
        assert post(f"{run.base}/api/stop?token={run.token}") == 202
        assert run.finish(120) == 130, run.output()
        page.wait_for("document.body.dataset.state === 'stopped'", 30)
        status = page.evaluate("document.getElementById('status').textContent")
        assert "exit status 130" in status and "--resume" in status, status
        with open(os.path.join(folder, "measurement.json")) as f:
            assert json.load(f)["status"] == "interrupted"
        with open(os.path.join(folder, "stop_requests.jsonl")) as f:
            assert len(f.read().splitlines()) == 1
    finally:
        if page:
            page.close()
        run.kill()


def test_a_characterisation_publishes_every_level_cdf_on_a_log_axis():
    out_dir = tempfile.mkdtemp(prefix="metaplast-live-char-")
    run = LiveRun(os.path.join(out_dir, "char"),
                  ["--device", "sim:?seed=2&formed=1", "--cells", "4000", "--cycles", "40",
                   "--read-repeats", "0", "--no-registry"], command=("characterize",))
    try:
        seen = events_until_final(run.base, run.token, timeout_s=300)
        assert run.finish(60) == 0, run.output()
        assert final(seen, "run")["stoppable"] is False  # no stop midway: no button
        plots = [body for kind, body in seen if kind == "plot"]
        assert len(plots) == 9  # one after each level, with the levels so far
        assert [len(p["series"]) for p in plots] == list(range(1, 10))
        cdf = plots[-1]
        assert cdf["x_log"] and not cdf["y_log"]
        assert cdf["x_label"] == "Conductance G (µS)"
        assert cdf["y_label"] == "Cumulative fraction of samples"
        medians = []
        for s in cdf["series"]:
            assert 2 <= len(s["x"]) <= 200
            assert s["x"] == sorted(s["x"]) and s["y"] == sorted(s["y"])
            assert 0 < s["y"][0] < 0.01 and 0.99 < s["y"][-1] <= 1  # 4 digits: (n - 0.5) / n -> 1
            medians.append(s["x"][len(s["x"]) // 2])
        assert medians == sorted(medians)  # the levels' conductances rise with I_CC
        assert final(seen, "progress")["fraction"] == 1.0
        status = final(seen, "status")
        assert status["state"] == "finished" and status["exit_status"] == 0
    finally:
        run.kill()


def write_campaign(folder):
    """Three short train steps: long enough to stop after the first."""
    path = os.path.join(folder, "campaign.json")
    with open(path, "w") as f:
        json.dump({"campaign": "live-test",
                   "defaults": {"train": {"tasks": ["mnist", "fashion"], "epochs": 2,
                                          "train-limit": 3000, "hidden": [256], "threads": 1}},
                   "steps": [{"id": f"seed{s}", "type": "train", "seed": s} for s in (1, 2, 3)]},
                  f)
    return path


def test_a_campaign_shows_its_steps_stops_after_a_step_and_resumes():
    out_dir = tempfile.mkdtemp(prefix="metaplast-live-campaign-")
    folder = os.path.join(out_dir, "run")
    run = LiveRun(folder, ["--quiet"], command=("campaign", "run", write_campaign(out_dir)))
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            steps = run.snapshot()["state"].get("campaign", {}).get("steps", [])
            if any(s["status"] == "running" for s in steps):
                break
            time.sleep(0.1)
        assert [s["id"] for s in steps] == ["seed1", "seed2", "seed3"], steps
        assert steps[0]["dir"] == "steps/seed1"
        # The page links each step's folder: served read-only from the run folder.
        with urllib.request.urlopen(f"{run.base}/files/steps/seed1/?token={run.token}") as r:
            assert r.status == 200 and "run folder: steps/seed1/" in r.read().decode()
        assert post(f"{run.base}/api/stop?token={run.token}") == 202
        seen = events_until_final(run.base, run.token, timeout_s=300)
        assert run.finish(120) == 130, run.output()
        status = final(seen, "status")
        assert status["state"] == "stopped" and status["exit_status"] == 130
        assert "metaplast campaign resume" in status["message"]
    finally:
        run.kill()
    # Resumed with --live, it runs what is left and ends finished.
    resumed = LiveRun(folder, ["--quiet"], command=("campaign", "resume", folder), out_flag=None)
    try:
        seen = events_until_final(resumed.base, resumed.token, timeout_s=600)
        assert resumed.finish(120) == 0, resumed.output()
        steps = final(seen, "campaign")["steps"]
        assert [s["status"] for s in steps] == ["done"] * 3, steps
        progress = final(seen, "progress")
        assert progress["fraction"] == 1.0 and progress["what"] == "3 of 3 steps done"
        assert final(seen, "status") == {
            "state": "finished", "exit_status": 0, "message": f"report: metaplast report {folder}"}
    finally:
        resumed.kill()
