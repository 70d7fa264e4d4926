"""The live view in a real browser (docs/live.md, "Tests"): `metaplast train --live` on the
simulated board, headless Chromium against its page, the stop action, and the page's last status.

Chromium is Debian's `chromium`, installed by scripts/setup.sh: without it these tests fail."""

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import pytest

import cdp

BIN = os.environ.get("METAPLAST_BIN", os.path.join(os.path.dirname(__file__), "../../build/bin"))
METAPLAST = os.path.join(BIN, "metaplast")
# A run long enough to be watched and stopped: about a second per epoch on a fast host.
LONG_RUN = ["--tasks", "mnist,fashion", "--epochs", "40", "--hidden", "256", "--threads", "1",
            "--device", "sim:?formed=1"]


def chromium():
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("chromium is not installed: scripts/setup.sh installs Debian's chromium")
    return path


class LiveRun:
    """`metaplast <command> --live --out DIR` (train by default) in the background, with the
    address it printed."""

    def __init__(self, out_dir, extra, command=("train",), out_flag="--out"):
        self.out_dir = out_dir
        # Output to a file: a pipe nobody reads would hold the run back.
        self.log_path = out_dir + ".log"
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(
                [METAPLAST, *command, "--live"] + ([out_flag, out_dir] if out_flag else []) + extra,
                stdout=log, stderr=subprocess.STDOUT)
        self.url = None
        deadline = time.monotonic() + 60
        while self.url is None and time.monotonic() < deadline:
            found = re.search(r"live view: (http://\S+)", self.output())
            if found:
                self.url = found.group(1)
            elif self.process.poll() is not None:
                break
            time.sleep(0.05)
        assert self.url, "no live view address printed:\n" + self.output()
        self.base = self.url.split("/?")[0]
        self.token = self.url.split("token=")[1]

    def snapshot(self):
        with urllib.request.urlopen(self.base + "/api/snapshot", timeout=10) as r:
            assert r.status == 200
            return json.load(r)

    def wait_for_epochs(self, count, timeout_s=600):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if len(self.snapshot()["series"].get("epoch", [])) >= count:
                return
            assert self.process.poll() is None, "the run ended early:\n" + self.output()
            time.sleep(0.2)
        pytest.fail(f"fewer than {count} epochs after {timeout_s} s")

    def output(self):
        with open(self.log_path) as log:
            return log.read()

    def finish(self, timeout_s=600):
        return self.process.wait(timeout=timeout_s)

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def post(url):
    request = urllib.request.Request(url, data=b"", method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def events_until_final(base, token, since=0, timeout_s=600):
    """Reads the server-sent events until a final status; returns [(kind, body)]."""
    url = f"{base}/api/events?since={since}&token={token}"
    seen, kind = [], None
    with urllib.request.urlopen(url, timeout=timeout_s) as stream:
        for raw in stream:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                body = json.loads(line[6:])
                seen.append((kind, body))
                if kind == "status" and body["state"] != "running":
                    return seen
    return seen


def png_is_drawn(path):
    """A PNG of the page with content: many colours, not one background."""
    import matplotlib.image
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] >= 600 and image.shape[1] >= 800, image.shape
    pixels = image.reshape(-1, image.shape[2])[:, :3]
    colours = {tuple(p) for p in (pixels[::97] * 255).astype(int)}
    return len(colours) > 50 and float(pixels.std()) > 0.05


def points(page, element_id):
    """How many data points the page's plot (or map) `element_id` holds now."""
    return int(page.evaluate(f"document.getElementById('{element_id}').dataset.points"))


def test_the_page_shows_a_running_training_and_its_stop():
    out_dir = tempfile.mkdtemp(prefix="metaplast-live-")
    run = LiveRun(os.path.join(out_dir, "run"), LONG_RUN)
    page = None
    try:
        run.wait_for_epochs(1)
        page = cdp.Browser(chromium(), run.url)
        page.wait_for("document.body.dataset.state === 'running' && "
                      "document.getElementById('accuracy-plot').dataset.points > 0")
        plots = ("accuracy-plot", "loss-plot", "writes-plot", "histogram-plot", "map")
        early = {p: points(page, p) for p in plots}
        assert all(n > 0 for n in early.values()), early
        # Every plot says what its axes are, with units (uPlot draws them from these labels).
        labels = page.evaluate("Object.values(state.plots).flatMap(p => p.plot.axes.map(a => a.label))")
        assert all(labels), labels
        for label in ("test accuracy (%)", "loss (nats, batch mean)", "pulses (SET + RESET)",
                      "devices", "epoch (over the run)"):
            assert label in labels, labels
        assert "µS" in page.evaluate("document.getElementById('map-caption').textContent + "
                                     "document.getElementById('colour-bar').dataset.unit")
        # A moment later the same page holds more points, pushed to it (no reload).
        run.wait_for_epochs(len(run.snapshot()["series"]["epoch"]) + 2)
        page.wait_for(f"document.getElementById('accuracy-plot').dataset.points > "
                      f"{early['accuracy-plot']}")
        late = {p: points(page, p) for p in ("accuracy-plot", "loss-plot", "writes-plot")}
        for plot in late:
            assert late[plot] > early[plot], (plot, early, late)
        shot = os.path.join(os.environ.get("METAPLAST_BUILD_DIR", out_dir), "live_view.png")
        page.screenshot(shot)
        assert png_is_drawn(shot), shot

        # The stop action: refused without the token; the page's button has it.
        assert post(run.base + "/api/stop") == 403
        page.evaluate("document.getElementById('stop').click()")
        assert run.finish() == 130, run.output()
        page.wait_for("document.body.dataset.state === 'stopped'", timeout_s=10)
        status = page.evaluate("document.getElementById('status').textContent")
        assert "exit status 130" in status and "--resume" in status, status
        with open(os.path.join(run.out_dir, "stop_requests.jsonl")) as log:
            record = json.loads(log.readline())
        assert record["from"].startswith("127.0.0.1") and "stop" in record["action"]
        assert os.path.exists(os.path.join(run.out_dir, "checkpoint.bin"))
        assert "stop requested from 127.0.0.1" in run.output()
    finally:
        if page is not None:
            page.close()
        run.kill()
        shutil.rmtree(out_dir, ignore_errors=True)


def test_a_finished_run_says_so_with_its_exit_status():
    out_dir = tempfile.mkdtemp(prefix="metaplast-live-")
    run = LiveRun(os.path.join(out_dir, "run"),
                  ["--tasks", "mnist", "--epochs", "2", "--hidden", "32", "--train-limit", "2000",
                   "--threads", "1"])
    try:
        events = events_until_final(run.base, run.token)
        assert run.finish() == 0, run.output()
        kinds = {kind for kind, _ in events}
        assert {"run", "status", "progress", "epoch", "step", "writes"} <= kinds, kinds
        status = events[-1][1]
        assert status == {"state": "finished", "exit_status": 0,
                          "message": "results in " + run.out_dir}, status
        epochs = [body for kind, body in events if kind == "epoch"]
        assert [e["epoch_index"] for e in epochs] == [1, 2]
        assert all(0 <= v["accuracy"] <= 1 for e in epochs for v in e["evaluations"])
    finally:
        run.kill()
        shutil.rmtree(out_dir, ignore_errors=True)


class View:
    """`metaplast view DIR` in the background, with the address it printed."""

    def __init__(self, folder):
        self.log_path = folder.rstrip("/") + ".view.log"
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen([METAPLAST, "view", folder], stdout=log,
                                            stderr=subprocess.STDOUT)
        deadline, found = time.monotonic() + 60, None
        while found is None and time.monotonic() < deadline and self.process.poll() is None:
            with open(self.log_path) as log:
                found = re.search(r"live view: (http://\S+)", log.read())
            time.sleep(0.05)
        assert found, "metaplast view printed no address"
        self.base, self.token = found.group(1).split("/?")[0], found.group(1).split("token=")[1]

    def snapshot(self):
        with urllib.request.urlopen(self.base + "/api/snapshot", timeout=10) as r:
            return json.load(r)

    def quit(self):
        self.process.send_signal(2)  # Ctrl-C
        return self.process.wait(timeout=30)


def test_view_follows_a_folder_being_written_to_its_end_and_shows_a_finished_one():
    out_dir = tempfile.mkdtemp(prefix="metaplast-view-")
    run_dir = os.path.join(out_dir, "run")
    train = subprocess.Popen(
        [METAPLAST, "train", "--out", run_dir, "--tasks", "mnist,fashion", "--epochs", "3",
         "--hidden", "128", "--train-limit", "20000", "--threads", "1", "--device",
         "sim:?formed=1"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    view = None
    try:
        deadline = time.monotonic() + 120
        while not os.path.exists(os.path.join(run_dir, "config.json")):
            assert time.monotonic() < deadline and train.poll() is None, "the run did not start"
            time.sleep(0.05)
        view = View(run_dir)  # while the run is being written
        events = events_until_final(view.base, view.token)
        assert train.wait(timeout=600) == 0
        status = events[-1][1]
        assert status["state"] == "finished" and status["exit_status"] == 0, status
        running = [b for k, b in events if k == "status" and b["state"] == "running"]
        assert running, "the view never saw the run in progress"
        epochs = [b for k, b in events if k == "epoch"]
        assert [e["epoch_index"] for e in epochs] == [1, 2, 3, 4, 5, 6]
        assert any(k == "board_map" for k, _ in events)
        assert view.quit() == 0
        view = None

        # A finished folder: its final numbers, those of summary.json.
        view = View(run_dir)
        snapshot = view.snapshot()
        with open(os.path.join(run_dir, "summary.json")) as f:
            final = json.load(f)["final"]
        last = snapshot["series"]["epoch"][-1]["evaluations"]
        shown = {v["task"]: v["accuracy"] for v in last if v["split"] == "test"}
        assert shown == pytest.approx(final, abs=1e-4), (shown, final)
        assert snapshot["state"]["status"]["state"] == "finished"
        assert snapshot["state"]["writes"]["per_epoch"]
        assert view.quit() == 0
        view = None
    finally:
        if view is not None:
            view.process.kill()
        if train.poll() is None:
            train.kill()
        shutil.rmtree(out_dir, ignore_errors=True)
