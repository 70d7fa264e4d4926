"""Headless Chromium driven over the DevTools protocol (a WebSocket), with the standard library
only: open a page, evaluate JavaScript in it, take a screenshot. For tests/live."""

import base64
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import urllib.request


class WebSocket:
    """A client WebSocket (RFC 6455) on a loopback address: text frames, as DevTools uses."""

    def __init__(self, url, timeout_s=60):
        found = re.match(r"ws://([^/:]+):(\d+)(/.*)", url)
        host, port, path = found.group(1), int(found.group(2)), found.group(3)
        self.sock = socket.create_connection((host, port), timeout=timeout_s)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        header = b""
        while b"\r\n\r\n" not in header:
            chunk = self.sock.recv(1)
            if not chunk:
                raise ConnectionError("DevTools closed the connection during the handshake")
            header += chunk
        if b" 101 " not in header.split(b"\r\n")[0]:
            raise ConnectionError("DevTools refused the WebSocket: " + header.decode(errors="replace"))

    def send(self, text):
        payload = text.encode()
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x81])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + masked)

    def _exactly(self, n):
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("DevTools closed the connection")
            data += chunk
        return data

    def receive(self):
        message = b""
        while True:
            first, second = self._exactly(2)
            n = second & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._exactly(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._exactly(8))[0]
            payload = self._exactly(n)
            if first & 0x0F == 0x8:
                raise ConnectionError("DevTools closed the WebSocket")
            message += payload
            if first & 0x80:  # the final fragment
                return message.decode()

    def close(self):
        self.sock.close()


class Browser:
    """Headless Chromium showing one page, driven over the DevTools protocol."""

    def __init__(self, chromium, url, width=1500, height=1300):
        self.profile = tempfile.mkdtemp(prefix="metaplast-chromium-")
        self.log_path = os.path.join(self.profile, "chromium.log")
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(
                [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                 f"--window-size={width},{height}", "--remote-debugging-port=0",
                 f"--user-data-dir={self.profile}", url],
                stdout=subprocess.DEVNULL, stderr=log)
        port = None
        deadline = time.monotonic() + 60
        while port is None and time.monotonic() < deadline:
            with open(self.log_path) as log:
                found = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", log.read())
            if found:
                port = int(found.group(1))
            elif self.process.poll() is not None:
                raise RuntimeError(f"chromium exited with {self.process.returncode}")
            else:
                time.sleep(0.1)
        if port is None:
            raise RuntimeError("chromium did not say where DevTools listens")
        targets = []
        while not targets and time.monotonic() < deadline:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
                targets = [t for t in json.load(r) if t.get("type") == "page"]
            time.sleep(0.1)
        self.ws = WebSocket(targets[0]["webSocketDebuggerUrl"])
        self.next_id = 0

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            reply = json.loads(self.ws.receive())
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def navigate(self, url):
        """Loads another page in the same tab (a browser already open, then the view)."""
        self.call("Page.navigate", url=url)

    def evaluate(self, expression):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression, timeout_s=120):
        """Evaluates `expression` until it is true. While the page is still loading its elements
        may not exist yet: an error then means "not yet", and the last one is reported at the
        deadline."""
        deadline = time.monotonic() + timeout_s
        error = None
        while time.monotonic() < deadline:
            try:
                value = self.evaluate(expression)
                error = None
            except RuntimeError as e:
                value, error = None, e
            if value:
                return value
            time.sleep(0.2)
        raise TimeoutError(f"the page never had {expression}" + (f" (last: {error})" if error else ""))

    def screenshot(self, path):
        data = self.call("Page.captureScreenshot", format="png")["data"]
        with open(path, "wb") as out:
            out.write(base64.b64decode(data))

    def close(self):
        try:
            self.ws.close()
        finally:
            self.process.kill()
            self.process.wait()
            shutil.rmtree(self.profile, ignore_errors=True)
