"""Starts `weir server` for the compat tests: a free port, a temporary data dir."""

import os
import re
import signal
import subprocess
import tempfile
import threading
import time

import pytest

READY = re.compile(r"weir broker ready on (\S+?)(?:,|\s|$)")


class Broker:
    """A `weir server` child process; restartable on the same data dir."""

    def __init__(self, data_dir):
        self.data_dir = data_dir
        self.proc = None
        self.bootstrap = None
        self.log_lines = []
        self.port = 0

    def start(self, timeout=60):
        binary = os.environ.get("WEIR_BIN", "weir")
        # Reuse the port across restarts so clients reconnect to the same address.
        listen = f"127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [binary, "server", "--data-dir", self.data_dir, "--listen", listen,
             "--override", "group.initial.rebalance.delay.ms=0"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        ready = threading.Event()

        def pump():
            for line in self.proc.stderr:
                self.log_lines.append(line)
                m = READY.search(line)
                if m and not ready.is_set():
                    self.bootstrap = m.group(1)
                    self.port = int(self.bootstrap.rsplit(":", 1)[1])
                    ready.set()

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(timeout):
            self.stop()
            raise RuntimeError("weir server did not become ready:\n" + "".join(self.log_lines[-30:]))
        return self.bootstrap

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)


@pytest.fixture(scope="module")
def broker():
    with tempfile.TemporaryDirectory(prefix="weir-compat-") as d:
        b = Broker(d)
        b.start()
        yield b
        b.stop()


def unique(name):
    return f"{name}-{os.getpid()}-{time.monotonic_ns()}"
