"""A real client keeps producing and consuming across a rolling restart of a
replicated three-node cluster (issue 6): an idempotent acks=all producer and a
group consumer run in threads while each node in turn is stopped (SIGTERM, a
controlled shutdown, exit 0), left down for DOWN seconds, started again on the
same data dir, and waited for until it is back in every ISR. Afterwards every
acknowledged record must have reached the group consumer and be in the log
exactly once at its acknowledged offset, and acks must have kept coming on
every partition while each node was down (2 of 3 replicas >= min.insync.replicas).

Run with confluent-kafka (librdkafka 2.x) and kafka-python. Each node's stderr is
in DIR/node-N.log; on a failure DIR is kept and its path printed.
WEIR_ROLL_DOWN=S changes the down time; WEIR_RDKAFKA_DEBUG=eos,broker,... turns
on librdkafka debug logging of the confluent producer (to stderr)."""

import os
import threading
import time
from collections import Counter, defaultdict

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import unique

PARTITIONS = 3
DOWN = float(os.environ.get("WEIR_ROLL_DOWN", "2.0"))  # seconds each node stays stopped


class Load:
    """Produces k0/v0, k1/v1, ... in a thread until stopped; keeps every
    delivery report. Subclasses drive one client library."""

    def __init__(self):
        self.acked = {}              # value -> (partition, offset)
        self.ack_times = []          # monotonic time of each ack, in order
        self.part_ack_times = defaultdict(list)  # partition -> ack times
        self.errors = []             # (time, value, error) of failed deliveries
        self.fatal = []              # producer-level fatal errors
        self.double_acks = []
        self.remaining = None        # records not acknowledged after the final flush
        self.sent = 0
        self.stop_flag = threading.Event()
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, name="producer", daemon=True)

    def _ack(self, value, partition, offset):
        now = time.monotonic()
        with self.lock:
            if value in self.acked:
                self.double_acks.append((value, self.acked[value], (partition, offset)))
            self.acked[value] = (partition, offset)
            self.ack_times.append(now)
            self.part_ack_times[partition].append(now)

    def _fail(self, value, err):
        with self.lock:
            self.errors.append((time.monotonic(), value, err))

    def acks_between(self, t0, t1):
        with self.lock:
            return sum(1 for t in self.ack_times if t0 <= t <= t1)

    def max_ack_gap(self, t0, t1, partition=None):
        """(longest time without an ack inside [t0, t1], when it began - t0)."""
        with self.lock:
            times = self.ack_times if partition is None else self.part_ack_times[partition]
            ts = [t0] + [t for t in times if t0 <= t <= t1] + [t1]
        return max((b - a, a - t0) for a, b in zip(ts, ts[1:]))


class ConfluentLoad(Load):
    def __init__(self, bootstrap, topic):
        super().__init__()
        self.topic = topic
        conf = {"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
                "linger.ms": 5, "error_cb": self._error}
        if os.environ.get("WEIR_RDKAFKA_DEBUG"):
            conf["debug"] = os.environ["WEIR_RDKAFKA_DEBUG"]
        self.producer = Producer(conf)

    def _error(self, err):
        if err.fatal():
            self.fatal.append((time.monotonic(), err))

    def _report(self, err, msg):
        if err is not None:
            self._fail(msg.value().decode(), err)
        else:
            self._ack(msg.value().decode(), msg.partition(), msg.offset())

    def _run(self):
        i = 0
        while not self.stop_flag.is_set() and not self.fatal:
            try:
                self.producer.produce(self.topic, key=f"k{i}".encode(), value=f"v{i}".encode(),
                                      on_delivery=self._report)
                i += 1
                self.sent = i
            except BufferError:  # local queue full: let deliveries drain
                self.producer.poll(0.1)
                continue
            self.producer.poll(0)
            time.sleep(0.002)
        self.remaining = self.producer.flush(30)
        del self.producer


class KafkaPythonLoad(Load):
    def __init__(self, bootstrap, topic):
        super().__init__()
        from kafka import KafkaProducer
        self.topic = topic
        self.producer = KafkaProducer(bootstrap_servers=bootstrap.split(","), acks="all",
                                      enable_idempotence=True, linger_ms=5)

    def _run(self):
        futures = []
        i = 0
        try:
            while not self.stop_flag.is_set():
                v = f"v{i}"
                f = self.producer.send(self.topic, key=f"k{i}".encode(), value=v.encode())
                f.add_callback(lambda md, v=v: self._ack(v, md.partition, md.offset))
                f.add_errback(lambda e, v=v: self._fail(v, e))
                futures.append(f)
                i += 1
                self.sent = i
                time.sleep(0.002)
            self.producer.flush(30)
        except Exception as e:  # a send that raised: the producer is broken
            self.fatal.append((time.monotonic(), e))
        finally:
            self.remaining = sum(1 for f in futures if not f.is_done)
            self.producer.close(5)


class GroupReader:
    """A group consumer (subscribe, auto commit) collecting, in a thread, the
    values it sees. Subclasses drive one client library."""

    def __init__(self):
        self.seen = set()
        self.errors = []
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self._run, name="consumer", daemon=True)


class ConfluentReader(GroupReader):
    def __init__(self, bootstrap, topic):
        super().__init__()
        self.consumer = Consumer({
            "bootstrap.servers": bootstrap, "group.id": unique("roll"),
            "auto.offset.reset": "earliest", "enable.partition.eof": False,
            "session.timeout.ms": 10000, "heartbeat.interval.ms": 1000})
        self.consumer.subscribe([topic])

    def _run(self):
        try:
            while not self.stop_flag.is_set():
                m = self.consumer.poll(0.2)
                if m is None:
                    continue
                if m.error():
                    self.errors.append(m.error())
                    continue
                self.seen.add(m.value().decode())
        finally:
            self.consumer.close()


class KafkaPythonReader(GroupReader):
    def __init__(self, bootstrap, topic):
        super().__init__()
        from kafka import KafkaConsumer
        self.consumer = KafkaConsumer(
            topic, bootstrap_servers=bootstrap.split(","), group_id=unique("roll"),
            auto_offset_reset="earliest", session_timeout_ms=10000, heartbeat_interval_ms=1000)

    def _run(self):
        try:
            while not self.stop_flag.is_set():
                for records in self.consumer.poll(timeout_ms=200).values():
                    self.seen.update(r.value.decode() for r in records)
        finally:
            self.consumer.close()


CLIENTS = {"confluent": (ConfluentLoad, ConfluentReader),
           "kafka-python": (KafkaPythonLoad, KafkaPythonReader)}


class Monitor:
    """Polls the topic's leaders and ISRs every 100 ms; keeps each change, with
    its time, for the timeline printed by the test."""

    def __init__(self, cluster, topic, t_base):
        self.cluster, self.topic, self.t_base = cluster, topic, t_base
        self.changes = []
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self._run, name="monitor", daemon=True)

    def _run(self):
        last = None
        admin = AdminClient({"bootstrap.servers": self.cluster.bootstrap()})
        while not self.stop_flag.wait(0.1):
            try:
                t = admin.list_topics(self.topic, timeout=2).topics[self.topic]
                state = tuple((p, t.partitions[p].leader, tuple(t.partitions[p].isrs))
                              for p in sorted(t.partitions))
            except Exception as e:
                state = ("error", str(e)[:80])
            if state != last:
                self.changes.append((time.monotonic() - self.t_base, state))
                last = state

    def event(self, what):
        self.changes.append((time.monotonic() - self.t_base, what))

    def timeline(self):
        return "\n".join(f"  {t:7.2f}s {s}" for t, s in self.changes)


def read_log(bootstrap, topic):
    """Every record of every partition from offset 0 to the high watermark:
    {partition: [(offset, value), ...]}."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("verify"),
                  "enable.auto.commit": False, "enable.partition.eof": True})
    try:
        ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in range(PARTITIONS)}
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
        got = defaultdict(list)
        deadline = time.monotonic() + 30
        done = {p for p, end in ends.items() if end == 0}
        while len(done) < PARTITIONS and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF and m.offset() >= ends[m.partition()]:
                    done.add(m.partition())
                continue
            got[m.partition()].append((m.offset(), m.value().decode()))
            if m.offset() + 1 >= ends[m.partition()]:
                done.add(m.partition())
        assert len(done) == PARTITIONS, f"read back timed out: ends {ends}, done {done}"
        return got, ends
    finally:
        c.close()


def in_sync_everywhere(cluster, node_id):
    """node_id is in the ISR of every partition it replicates (every topic,
    __consumer_offsets too), asked of the other nodes."""
    md = cluster.metadata(exclude=(node_id,))
    assert node_id in md.brokers
    for t in md.topics.values():
        for p in t.partitions.values():
            if p.error is not None or p.leader < 0:
                return False
            if node_id in p.replicas and node_id not in p.isrs:
                return False
    return True


@pytest.mark.parametrize("client", list(CLIENTS))
def test_rolling_restart_under_load(cluster, client):
    make_load, make_reader = CLIENTS[client]
    t_start = time.monotonic()
    topic = unique("roll")
    a = AdminClient({"bootstrap.servers": cluster.bootstrap()})
    a.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=3,
                              config={"min.insync.replicas": "2"})])[topic].result(30)
    cluster.wait_for(lambda: all(len(p.isrs) == 3 for p in
                                 cluster.metadata(topic).topics[topic].partitions.values()),
                     "a full ISR on the new topic")

    load = make_load(cluster.bootstrap(), topic)
    reader = make_reader(cluster.bootstrap(), topic)
    monitor = Monitor(cluster, topic, t_start)
    monitor.thread.start()
    load.thread.start()
    reader.thread.start()
    cluster.wait_for(lambda: len(load.acked) >= 200, "first acks")

    try:
        windows = []
        try:
            for node_id in sorted(cluster.nodes):
                node = cluster.nodes[node_id]
                t0 = time.monotonic()
                monitor.event(f"SIGTERM node {node_id}")
                code = node.terminate(timeout=30)
                t_exit = time.monotonic()
                monitor.event(f"node {node_id} exited {code}")
                assert code == 0, f"node {node_id} exit code {code} after SIGTERM ({t_exit - t0:.1f}s)"
                time.sleep(DOWN)  # the cluster runs on two nodes for a while
                t_spawn = time.monotonic()
                monitor.event(f"start node {node_id}")
                node.spawn()
                node.wait_ready()
                t_ready = time.monotonic()
                monitor.event(f"node {node_id} ready")
                cluster.wait_for(lambda: in_sync_everywhere(cluster, node_id),
                                 f"node {node_id} back in the ISR of every partition", 45)
                t1 = time.monotonic()
                monitor.event(f"node {node_id} in every ISR")
                windows.append((node_id, t0, t_exit, t_spawn, t1))
                gaps = " ".join(f"p{p}={load.max_ack_gap(t0, t1, p)[0]:.2f}s" for p in range(PARTITIONS))
                print(f"node {node_id}: exit 0 after {t_exit - t0:.1f}s, down {t_spawn - t_exit:.1f}s, "
                      f"ready {t_ready - t_spawn:.1f}s after start, in every ISR {t1 - t_ready:.1f}s later; "
                      f"acks {load.acks_between(t0, t1)} in the window, {load.acks_between(t_exit, t_spawn)} "
                      f"while down; longest ack gaps {gaps}")
                assert not load.fatal, f"producer fatal error: {load.fatal}"
                # A little load with the full cluster before the next node goes.
                n = len(load.acked)
                cluster.wait_for(lambda: len(load.acked) >= n + 100, "acks after the restart")
        finally:
            load.stop_flag.set()
            load.thread.join(60)
            monitor.stop_flag.set()
            monitor.thread.join(10)
            print(f"timeline (seconds since the test began; partition, leader, ISR):\n{monitor.timeline()}")
            print(f"logs: {cluster.dir}/node-*.log")

        assert not load.thread.is_alive(), "producer thread did not stop"
        assert load.remaining == 0, f"{load.remaining} records still unacknowledged after flush"
        assert not load.fatal, f"producer fatal error: {load.fatal}"
        assert not load.double_acks, f"acknowledged twice: {load.double_acks[:5]}"
        assert not load.errors, (f"{len(load.errors)} failed deliveries, first: {load.errors[:5]}; "
                                 f"logs in {cluster.dir}")
        acked = dict(load.acked)
        assert len(acked) == load.sent

        # The group consumer saw every acknowledged record.
        cluster.wait_for(lambda: set(acked) <= reader.seen, "the group consumer to catch up", 30)
        reader.stop_flag.set()
        reader.thread.join(30)

        # The log holds every acknowledged record exactly once, at its acked offset.
        log, ends = read_log(cluster.bootstrap(), topic)
        at = {(p, o): v for p, recs in log.items() for o, v in recs}
        missing = [(v, po) for v, po in acked.items() if at.get(po) != v]
        assert not missing, (f"{len(missing)} acked records missing from their offsets, first "
                             f"{sorted(missing, key=lambda x: int(x[0][1:]))[:10]}; ends {ends}; "
                             f"logs in {cluster.dir}")
        dups = {v: n for v, n in Counter(v for recs in log.values() for _, v in recs).items() if n > 1}
        assert not dups, f"{len(dups)} values duplicated in the log, e.g. {list(dups.items())[:10]}"
        for path in cluster.logs():
            with open(path, errors="replace") as f:
                panics = [line for line in f if "panicked at" in line]
            assert not panics, f"{path}: {panics[:3]}"
        print(f"{len(acked)} acked, {sum(len(r) for r in log.values())} in the log, "
              f"{len(reader.seen)} seen by the group; {time.monotonic() - t_start:.1f}s")

        # Progress during every restart (checked last, so a stall does not hide a
        # lost record): acks kept coming on every partition while each node was
        # stopped (two of three replicas in sync >= min.insync.replicas).
        stalls = []
        for node_id, t0, t_exit, t_spawn, t1 in windows:
            for p in range(PARTITIONS):
                if not any(t_exit <= t <= t_spawn for t in load.part_ack_times[p]):
                    gap, at = load.max_ack_gap(t0, t1, p)
                    stalls.append(f"node {node_id} stopped t={t_exit - t_start:.2f}s..{t_spawn - t_start:.2f}s: "
                                  f"no ack on partition {p} (its longest gap {gap:.2f}s, from "
                                  f"SIGTERM+{at:.2f}s)")
        assert not stalls, "acks stopped while a node was down:\n" + "\n".join(stalls) + \
            f"\nlogs in {cluster.dir}"
    finally:  # whatever failed, no client thread outlives the test
        for worker in (load, reader, monitor):
            worker.stop_flag.set()
        for worker in (load, reader, monitor):
            worker.thread.join(60)
