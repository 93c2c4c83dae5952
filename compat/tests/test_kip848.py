"""KIP-848 consumer groups (`group.protocol=consumer`, ConsumerGroupHeartbeat v1)
with confluent-kafka: two members share a topic, every record is consumed once, and
when one member leaves the other takes over its partitions."""

import time

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import unique


def produce(bootstrap, topic, start, n):
    p = Producer({"bootstrap.servers": bootstrap})
    for i in range(start, start + n):
        p.produce(topic, key=f"k{i}".encode(), value=f"{i}".encode())
    assert p.flush(30) == 0


def member(bootstrap, group):
    return Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                     "group.protocol": "consumer", "auto.offset.reset": "earliest",
                     "enable.auto.commit": True, "auto.commit.interval.ms": 100})


def poll_until(consumers, seen, want, timeout=60):
    deadline = time.monotonic() + timeout
    while len(seen) < want and time.monotonic() < deadline:
        for c in consumers:
            m = c.poll(0.2)
            if m is not None and not m.error():
                seen.append(int(m.value()))


def test_two_members_share_then_one_takes_over(broker):
    topic, group = unique("k848"), unique("g848")
    a = AdminClient({"bootstrap.servers": broker.bootstrap})
    a.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)])[topic].result(30)
    produce(broker.bootstrap, topic, 0, 200)
    first, second = member(broker.bootstrap, group), member(broker.bootstrap, group)
    first.subscribe([topic])
    second.subscribe([topic])
    seen = []
    poll_until([first, second], seen, 200)
    assert sorted(seen) == list(range(200))
    # Both members end up with partitions of their own (the uniform assignor).
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (first.assignment() and second.assignment()):
        first.poll(0.1)
        second.poll(0.1)
    owned = sorted(tp.partition for c in (first, second) for tp in c.assignment())
    assert owned == [0, 1, 2, 3] and first.assignment() and second.assignment()
    # One member leaves: the other gets every partition and reads what follows.
    first.close()
    produce(broker.bootstrap, topic, 200, 100)
    later = []
    poll_until([second], later, 100)
    assert sorted(later) == list(range(200, 300))
    assert sorted(tp.partition for tp in second.assignment()) == [0, 1, 2, 3]
    second.close()


def test_regex_subscription_picks_up_a_topic_created_later(broker):
    """`^prefix.*` with group.protocol=consumer: librdkafka sends the regex in
    ConsumerGroupHeartbeat v1 and the broker resolves it, again when a matching
    topic is created after the member subscribed; a topic that does not match is
    never assigned."""
    prefix, group = unique("rx848"), unique("grx848")
    first, later, other = f"{prefix}-a", f"{prefix}-b", unique("other848")
    a = AdminClient({"bootstrap.servers": broker.bootstrap})
    for name, partitions in ((first, 2), (other, 1)):
        a.create_topics([NewTopic(name, num_partitions=partitions,
                                  replication_factor=1)])[name].result(30)
    produce(broker.bootstrap, first, 0, 20)
    produce(broker.bootstrap, other, 1000, 5)
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group,
                  "group.protocol": "consumer", "auto.offset.reset": "earliest",
                  "topic.metadata.refresh.interval.ms": 1000})
    c.subscribe([f"^{prefix}-.*"])
    seen = []
    poll_until([c], seen, 20)
    assert sorted(seen) == list(range(20))
    a.create_topics([NewTopic(later, num_partitions=3, replication_factor=1)])[later].result(30)
    produce(broker.bootstrap, later, 100, 30)
    more = []
    poll_until([c], more, 30)
    assert sorted(more) == list(range(100, 130))
    assert {tp.topic for tp in c.assignment()} == {first, later}
    c.close()
