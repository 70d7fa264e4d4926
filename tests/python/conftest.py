"""Fixtures of the Python module's tests: the simulated board as a process (metaplast-simboard)."""

import contextlib
import os
import socket
import subprocess
import threading
import time

import pytest

BIN = os.environ.get("METAPLAST_BIN", os.path.join(os.path.dirname(__file__), "../../build/bin"))
SOURCE = os.environ.get("METAPLAST_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "../.."))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, process, timeout_s=20):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"metaplast-simboard exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"metaplast-simboard did not listen on port {port}")


class SimBoardProcess:
    """metaplast-simboard serving one formed simulated board on a loopback port."""

    def __init__(self):
        self.port = free_port()
        self.process = subprocess.Popen(
            [os.path.join(BIN, "metaplast-simboard"), "--seed", "3", "--formed", "--tcp",
             f"127.0.0.1:{self.port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for_port(self.port, self.process)
        # The probe connection above may keep the board busy for a moment: wait until it is free.
        time.sleep(0.2)

    @property
    def address(self):
        return f"tcp:127.0.0.1:{self.port}"

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


class PtySimBoardProcess:
    """metaplast-simboard serving a formed simulated board on a new pseudo-terminal, which the
    host opens through the serial driver (a serial: address)."""

    def __init__(self):
        self.process = subprocess.Popen(
            [os.path.join(BIN, "metaplast-simboard"), "--seed", "4", "--formed", "--pty"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.address = self.process.stdout.readline().strip()
        if not self.address.startswith("serial:"):
            self.kill()
            raise RuntimeError(f"metaplast-simboard --pty printed {self.address!r}")

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


@pytest.fixture
def pty_simboard():
    board = PtySimBoardProcess()
    yield board
    board.kill()


@pytest.fixture
def simboard():
    board = SimBoardProcess()
    yield board
    board.kill()


@contextlib.contextmanager
def python_thread_progress():
    """Counts the iterations another Python thread makes while the block runs: a call that
    releases the GIL lets it count thousands of times, one that holds it almost none."""
    ticks = [0]
    stop = threading.Event()

    def count():
        while not stop.is_set():
            ticks[0] += 1

    counter = threading.Thread(target=count)
    counter.start()
    try:
        yield ticks
    finally:
        stop.set()
        counter.join()
