"""confluent-kafka (librdkafka 2.x): admin, idempotent producer with every codec,
consumer by assignment, offsets by timestamp, and a kill -9 restart."""

import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, OFFSET_BEGINNING, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewPartitions, NewTopic

from conftest import unique

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


def admin(b):
    return AdminClient({"bootstrap.servers": b.bootstrap})


def create(b, topic, partitions=1, config=None):
    a = admin(b)  # the client must outlive its futures
    fs = a.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1,
                                          config=config or {})])
    fs[topic].result(30)


def produce(b, topic, n, partition=None, **conf):
    p = Producer({"bootstrap.servers": b.bootstrap, "enable.idempotence": True, "linger.ms": 5, **conf})
    acked = []

    def report(err, msg):
        assert err is None, err
        acked.append((msg.partition(), msg.offset(), msg.key(), msg.value()))

    for i in range(n):
        kwargs = {"key": f"k{i}".encode(), "value": f"v{i}".encode(),
                  "headers": [("h", f"{i}".encode())], "on_delivery": report}
        if partition is not None:
            kwargs["partition"] = partition
        p.produce(topic, **kwargs)
        p.poll(0)
    assert p.flush(30) == 0
    return acked


def consume_all(b, topic, partitions, expect, timeout=30):
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": unique("g"),
                  "enable.auto.commit": False, "enable.partition.eof": False})
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < expect and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        got.append((m.partition(), m.offset(), m.key(), m.value(), m.headers()))
    c.close()
    return got


def test_admin_create_describe_partitions_delete(broker):
    topic = unique("adm")
    create(broker, topic, 2, {"retention.ms": "3600000", "cleanup.policy": "delete"})
    a = admin(broker)
    md = a.list_topics(timeout=10)
    assert len(md.topics[topic].partitions) == 2
    res = ConfigResource(ConfigResource.Type.TOPIC, topic)
    cfg = a.describe_configs([res])[res].result(30)
    assert cfg["retention.ms"].value == "3600000"
    assert cfg["segment.bytes"].is_default
    a.create_partitions([NewPartitions(topic, 4)])[topic].result(30)
    assert len(a.list_topics(timeout=10).topics[topic].partitions) == 4
    with pytest.raises(KafkaException) as exists:
        a.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    assert exists.value.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS
    a.delete_topics([topic])[topic].result(30)
    assert topic not in a.list_topics(timeout=10).topics


@pytest.mark.parametrize("codec", CODECS)
def test_idempotent_round_trip_with_each_codec(broker, codec):
    topic = unique(f"cf-{codec}")
    create(broker, topic, 3)
    acked = produce(broker, topic, 300, **{"compression.type": codec, "acks": "all"})
    got = consume_all(broker, topic, 3, 300)
    assert sorted((p, o, k, v) for p, o, k, v, _ in got) == sorted(acked)
    assert all(h == [("h", v[1:])] for _, _, _, v, h in got)
    # keys land on the same partition every time (murmur2 partitioner)
    by_key = {k: p for p, _, k, _ in acked}
    assert len(by_key) == 300


def test_offsets_for_times_is_record_precise(broker):
    topic = unique("times")
    create(broker, topic, 1)
    p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 100})
    base = 1_700_000_000_000
    for i in range(10):
        p.produce(topic, value=b"x", partition=0, timestamp=base + i * 1000)
    assert p.flush(30) == 0
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": unique("g")})
    found = c.offsets_for_times([TopicPartition(topic, 0, base + 4500)], timeout=10)
    assert found[0].offset == 5
    lo, hi = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    assert (lo, hi) == (0, 10)
    c.close()


def test_acked_records_survive_kill_9(broker):
    topic = unique("crash")
    create(broker, topic, 2)
    acked = produce(broker, topic, 500, **{"acks": "all"})
    broker.kill9()
    broker.start()
    got = consume_all(broker, topic, 2, 500)
    assert sorted((p, o, k, v) for p, o, k, v, _ in got) == sorted(acked)
