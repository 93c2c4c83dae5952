"""kafka-python (pure Python): admin, producer with acks 0/1/all and gzip,
consumer by assignment without a group, offsets by timestamp."""

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from conftest import unique


def test_admin_create_and_delete(broker):
    a = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    topic = unique("kp-adm")
    a.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
    assert topic in a.list_topics()
    a.delete_topics([topic])
    a.close()


@pytest.mark.parametrize("acks", [0, 1, "all"])
@pytest.mark.parametrize("codec", [None, "gzip"])
def test_produce_consume(broker, acks, codec):
    topic = unique("kp")
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, acks=acks, compression_type=codec)
    futures = [p.send(topic, key=f"k{i}".encode(), value=f"v{i}".encode(), partition=0,
                      headers=[("h", b"1")]) for i in range(100)]
    p.flush()
    if acks != 0:
        assert [f.get(10).offset for f in futures] == list(range(100))
    p.close()
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None,
                      enable_auto_commit=False, consumer_timeout_ms=5000)
    tp = TopicPartition(topic, 0)
    c.assign([tp])
    c.seek_to_beginning(tp)
    got = [(m.offset, m.key, m.value, m.headers) for m in c]
    assert got == [(i, f"k{i}".encode(), f"v{i}".encode(), [("h", b"1")]) for i in range(100)]
    assert c.end_offsets([tp])[tp] == 100
    c.close()


def test_offsets_for_times(broker):
    topic = unique("kp-times")
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=50)
    base = 1_700_000_000_000
    for i in range(10):
        p.send(topic, value=b"x", partition=0, timestamp_ms=base + i * 1000)
    p.flush()
    p.close()
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None)
    tp = TopicPartition(topic, 0)
    assert c.offsets_for_times({tp: base + 2500})[tp].offset == 3
    c.close()
