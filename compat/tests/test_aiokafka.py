"""aiokafka (asyncio): an idempotent producer (InitProducerId at the old versions
aiokafka speaks), gzip, an assignment consumer, and offsets by timestamp."""

import asyncio

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from conftest import unique


def run(coro):
    return asyncio.run(coro)


async def create(bootstrap, topic, partitions):
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    finally:
        await admin.close()


def test_idempotent_producer_and_assignment_consumer(broker):
    topic = unique("aio")

    async def scenario():
        await create(broker.bootstrap, topic, 2)
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, enable_idempotence=True,
                                    acks="all", compression_type="gzip")
        await producer.start()
        try:
            sent = []
            for i in range(200):
                md = await producer.send_and_wait(topic, key=f"k{i}".encode(), value=f"v{i}".encode(),
                                                  headers=[("h", b"x")])
                sent.append((md.partition, md.offset, f"k{i}".encode(), f"v{i}".encode()))
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            tps = [TopicPartition(topic, p) for p in range(2)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            got = []
            while len(got) < 200:
                batch = await consumer.getmany(timeout_ms=2000)
                assert batch, f"stalled after {len(got)} records"
                for records in batch.values():
                    got += [(r.partition, r.offset, r.key, r.value) for r in records]
                    assert all(r.headers == (("h", b"x"),) for r in records)
            assert sorted(got) == sorted(sent)
        finally:
            await consumer.stop()

    run(scenario())


def test_offsets_for_times_and_end_offsets(broker):
    topic = unique("aio-times")

    async def scenario():
        await create(broker.bootstrap, topic, 1)
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=50)
        await producer.start()
        base = 1_700_000_000_000
        try:
            for i in range(10):
                await producer.send(topic, value=b"x", partition=0, timestamp_ms=base + i * 1000)
            await producer.flush()
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap)
        await consumer.start()
        try:
            tp = TopicPartition(topic, 0)
            found = await consumer.offsets_for_times({tp: base + 6500})
            assert found[tp].offset == 7
            assert (await consumer.end_offsets([tp]))[tp] == 10
        finally:
            await consumer.stop()

    run(scenario())
