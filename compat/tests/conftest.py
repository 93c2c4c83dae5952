"""Starts `weir server` for the compat tests: a free port, a temporary data dir.
Also a three-node replicated cluster (`cluster` fixture) for test_cluster.py."""

import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
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


# --- a replicated cluster ----------------------------------------------------

# Failover in seconds rather than Kafka's defaults' tens (as the Rust cluster tests).
CLUSTER_OVERRIDES = [
    "broker.session.timeout.ms=3000",
    "broker.heartbeat.interval.ms=500",
    "replica.lag.time.max.ms=5000",
    "replica.fetch.wait.max.ms=200",
    "replica.fetch.backoff.ms=200",
    "group.initial.rebalance.delay.ms=0",
]


def free_ports(n):
    """n distinct free ports on 127.0.0.1 (bound together, then released)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _die_with_parent():
    """In the child: SIGKILL it if the process that started it dies (Linux)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class ClusterNode:
    """One `weir server` of a cluster: fixed ports and args, stderr appended to
    DIR/node-N.log across restarts."""

    def __init__(self, node_id, args, log_path):
        self.id = node_id
        self.args = args
        self.log_path = log_path
        self.proc = None
        self.bootstrap = None

    def spawn(self):
        assert self.proc is None or self.proc.poll() is not None, f"node {self.id} is running"
        with open(self.log_path, "ab") as log:
            log.write(f"=== {time.strftime('%H:%M:%S')} start node {self.id}\n".encode())
            log.flush()
            self.ready_from = log.tell()
            env = dict(os.environ, NO_COLOR="1",
                       RUST_LOG=os.environ.get("WEIR_CLUSTER_LOG", "info,openraft=warn"))
            self.proc = subprocess.Popen(
                [os.environ.get("WEIR_BIN", "weir"), "server", *self.args],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
                preexec_fn=_die_with_parent)

    def wait_ready(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(self.log_path, "rb") as f:
                f.seek(self.ready_from)
                m = READY.search(f.read().decode(errors="replace"))
            if m:
                self.bootstrap = m.group(1)
                return self.bootstrap
            if self.proc.poll() is not None:
                raise RuntimeError(f"node {self.id} exited with {self.proc.returncode} before "
                                   f"it was ready; see {self.log_path}")
            time.sleep(0.05)
        raise RuntimeError(f"node {self.id} not ready in {timeout}s; see {self.log_path}")

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def terminate(self, timeout=30):
        """SIGTERM (a controlled shutdown); returns the exit code, None on a timeout."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self):
        if self.running():
            self.proc.kill()
        if self.proc is not None:
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                pass


class Cluster:
    """n `weir server` nodes on 127.0.0.1, each a broker and a quorum voter;
    `racks` maps a node id to its broker.rack."""

    def __init__(self, n=3, overrides=CLUSTER_OVERRIDES, racks=None):
        self.dir = tempfile.mkdtemp(prefix="weir-cluster-")
        ports = free_ports(2 * n)
        client = {i: ports[2 * (i - 1)] for i in range(1, n + 1)}
        ctrl = {i: ports[2 * (i - 1) + 1] for i in range(1, n + 1)}
        voters = ",".join(f"{i}@127.0.0.1:{ctrl[i]}" for i in range(1, n + 1))
        self.nodes = {}
        for i in range(1, n + 1):
            data = os.path.join(self.dir, f"node-{i}")
            args = ["--node-id", str(i), "--data-dir", data,
                    "--listen", f"127.0.0.1:{client[i]}",
                    "--controller-listen", f"127.0.0.1:{ctrl[i]}", "--voters", voters]
            for o in overrides:
                args += ["--override", o]
            if racks:
                args += ["--rack", racks[i]]
            self.nodes[i] = ClusterNode(i, args, os.path.join(self.dir, f"node-{i}.log"))
        self.addr = {i: f"127.0.0.1:{client[i]}" for i in client}

    def start(self, timeout=60):
        for node in self.nodes.values():  # all first: a voter waits for its peers
            node.spawn()
        for node in self.nodes.values():
            node.wait_ready(timeout)
        self.wait_for(lambda: len(self.metadata().brokers) == len(self.nodes),
                      f"{len(self.nodes)} brokers in metadata", timeout)

    def bootstrap(self, exclude=()):
        return ",".join(a for i, a in self.addr.items() if i not in exclude)

    def metadata(self, topic=None, exclude=(), timeout=5):
        from confluent_kafka.admin import AdminClient
        a = AdminClient({"bootstrap.servers": self.bootstrap(exclude)})
        return a.list_topics(topic, timeout=timeout)

    def wait_for(self, cond, what, timeout=30):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                if cond():
                    return
            except Exception as e:  # a broker going away mid-call
                last = e
            time.sleep(0.2)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}"
                             f"{f' (last error: {last})' if last else ''}; logs in {self.dir}")

    def logs(self):
        return [n.log_path for n in self.nodes.values()]

    def destroy(self, keep):
        for node in self.nodes.values():
            node.kill()
        if keep:
            print(f"\nweir cluster logs kept: {self.dir}/node-*.log", file=sys.stderr)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture
def cluster(request):
    """A started three-node cluster; torn down after the test. On a failure the
    temp dir (data and each node's log) is kept and its path printed."""
    c = Cluster(3)
    try:
        c.start()
        yield c
    except BaseException:
        c.destroy(keep=True)
        raise
    failed = any(getattr(request.node, f"rep_{w}", None) is not None
                 and getattr(request.node, f"rep_{w}").failed for w in ("setup", "call"))
    c.destroy(keep=failed or os.environ.get("WEIR_KEEP_CLUSTER") == "1")
