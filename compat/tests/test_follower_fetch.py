"""Fetching from followers (KIP-392) with a real client: librdkafka, given
`client.rack`, follows the preferred read replica the leader names and reads the
whole partition from the follower in its rack. Each node is its own rack; the
brokers run Kafka's rack-aware replica selector."""

import json
import time

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import CLUSTER_OVERRIDES, Cluster, unique

SELECTOR = "replica.selector.class=org.apache.kafka.common.replica.RackAwareReplicaSelector"
RACKS = {1: "rack-a", 2: "rack-b", 3: "rack-c"}
RECORDS = 500


@pytest.fixture
def racked_cluster():
    c = Cluster(3, overrides=CLUSTER_OVERRIDES + [SELECTOR], racks=RACKS)
    failed = True
    try:
        c.start()
        yield c
        failed = False
    finally:
        c.destroy(keep=failed)


def test_a_consumer_reads_from_the_follower_in_its_rack(racked_cluster):
    c = racked_cluster
    topic = unique("racked")
    admin = AdminClient({"bootstrap.servers": c.bootstrap()})
    futures = admin.create_topics([NewTopic(topic, 1, 3, config={"min.insync.replicas": "2"})])
    futures[topic].result(30)
    c.wait_for(lambda: len(c.metadata(topic).topics[topic].partitions[0].isrs) == 3,
               "a full ISR")
    leader = c.metadata(topic).topics[topic].partitions[0].leader

    producer = Producer({"bootstrap.servers": c.bootstrap(), "acks": "all"})
    for i in range(RECORDS):
        producer.produce(topic, value=f"v-{i}".encode(), partition=0)
    assert producer.flush(30) == 0

    follower = next(n for n in RACKS if n != leader)
    fetched_from = []

    def stats(text):
        p = json.loads(text).get("topics", {}).get(topic, {}).get("partitions", {}).get("0")
        if p:
            fetched_from.append(p.get("broker"))

    consumer = Consumer({
        "bootstrap.servers": c.bootstrap(),
        "group.id": unique("g"),
        "client.rack": RACKS[follower],
        "enable.auto.commit": False,
        "statistics.interval.ms": 200,
        "stats_cb": stats,
    })
    try:
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        values = []
        deadline = time.monotonic() + 60
        while len(values) < RECORDS and time.monotonic() < deadline:
            m = consumer.poll(0.5)
            if m is not None and not m.error():
                values.append(m.value().decode())
        # A few more stats rounds once everything is read.
        settle = time.monotonic() + 2
        while time.monotonic() < settle:
            consumer.poll(0.2)
    finally:
        consumer.close()
    assert values == [f"v-{i}" for i in range(RECORDS)]
    assert follower in fetched_from, (
        f"leader {leader}, follower {follower} in rack {RACKS[follower]}: "
        f"librdkafka fetched from {sorted(set(fetched_from))}")
