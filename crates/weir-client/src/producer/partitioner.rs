//! Choosing a partition, the way the Java client does.
//!
//! - A record with a partition goes there.
//! - A record with a key goes to `toPositive(murmur2(key)) % numPartitions`, over
//!   *all* partitions (available or not), so a key lands on the same partition
//!   whichever Kafka client wrote it. [`murmur2`] is the Java client's variant
//!   (seed `0x9747b28c`, little-endian 4-byte blocks, signed 32-bit result) and
//!   `toPositive` masks the sign bit rather than taking an absolute value.
//! - A record without a key uses the sticky partitioner (KIP-480): all keyless
//!   records of a topic go to one partition until about `batch.size` bytes were
//!   sent to it, then another is picked at random (the switching rule of KIP-794, the
//!   Java client's since 3.3), so keyless traffic fills whole batches instead of
//!   spraying one-record batches over every partition. Partitions with a leader are
//!   preferred.

use std::collections::HashMap;

use crate::cluster::TopicInfo;
use crate::util::random_u32;

/// The Java client's murmur2 hash (`org.apache.kafka.common.utils.Utils.murmur2`).
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;

    // Java's `int h = seed ^ length` truncates the length to 32 bits the same way.
    let mut h: u32 = SEED ^ (data.len() as u32);
    let mut blocks = data.chunks_exact(4);
    for b in &mut blocks {
        let mut k = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = blocks.remainder();
    // Java's switch falls through from case 3 to case 1.
    if let Some(&b) = tail.get(2) {
        h ^= u32::from(b) << 16;
    }
    if let Some(&b) = tail.get(1) {
        h ^= u32::from(b) << 8;
    }
    if let Some(&b) = tail.first() {
        h ^= u32::from(b);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// Java's `Utils.toPositive`: clears the sign bit (not `abs`, which would differ for
/// negative values and overflow for `i32::MIN`).
pub fn to_positive(n: i32) -> i32 {
    n & 0x7fff_ffff
}

/// The partition the Java client picks for `key` among `num_partitions`.
pub fn partition_for_key(key: &[u8], num_partitions: usize) -> i32 {
    let n = i32::try_from(num_partitions.max(1)).unwrap_or(i32::MAX);
    to_positive(murmur2(key)) % n
}

/// Per-topic sticky partition for keyless records.
#[derive(Debug, Default)]
pub(crate) struct StickyPartitioner {
    topics: HashMap<String, Sticky>,
}

#[derive(Debug, Clone, Copy)]
struct Sticky {
    partition: i32,
    /// Bytes sent to `partition` since it was chosen.
    bytes: usize,
}

impl StickyPartitioner {
    /// The partition for a keyless record of `record_bytes` to `topic`; switches after
    /// `batch_size` bytes (or when the sticky partition no longer exists).
    pub(crate) fn partition(
        &mut self,
        topic: &TopicInfo,
        record_bytes: usize,
        batch_size: usize,
    ) -> i32 {
        let count = topic.partitions.len();
        // One lookup per record; the topic name is cloned only on its first record.
        let sticky = match self.topics.get_mut(&topic.name) {
            Some(s) => s,
            None => self.topics.entry(topic.name.clone()).or_insert(Sticky {
                partition: -1,
                bytes: 0,
            }),
        };
        if sticky.bytes >= batch_size.max(1)
            || usize::try_from(sticky.partition).map_or(true, |p| p >= count)
        {
            let previous = (sticky.partition >= 0).then_some(sticky.partition);
            *sticky = Sticky {
                partition: choose(topic, previous),
                bytes: 0,
            };
        }
        sticky.bytes += record_bytes;
        sticky.partition
    }
}

/// A random partition, preferring ones with a leader and avoiding `previous` when
/// there is a choice.
fn choose(topic: &TopicInfo, previous: Option<i32>) -> i32 {
    let mut candidates: Vec<i32> = topic
        .partitions
        .iter()
        .filter(|p| p.leader.is_some())
        .map(|p| p.partition)
        .collect();
    if candidates.is_empty() {
        candidates = topic.partitions.iter().map(|p| p.partition).collect();
    }
    if candidates.len() > 1 {
        if let Some(prev) = previous {
            candidates.retain(|&p| p != prev);
        }
    }
    if candidates.is_empty() {
        return 0;
    }
    let i = random_u32() as usize % candidates.len();
    candidates.get(i).copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::PartitionInfo;
    use weir_protocol::Uuid;
    use weir_types::{ErrorCode, NodeId};

    /// murmur2 values published with the Java client's own test (`UtilsTest.testMurmur2`)
    /// and librdkafka's (`unittest_murmur2`, the "Java murmur2" column).
    const GOLDEN: &[(&[u8], i32)] = &[
        (b"21", -973_932_308),
        (b"foobar", -790_332_482),
        (b"a-little-bit-long-string", -985_981_536),
        (b"a-little-bit-longer-string", -1_486_304_829),
        (
            b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
            -58_897_971,
        ),
        (b"abc", 479_470_107),
        (b"kafka", 0xd067_cf64_u32 as i32),
        (b"giberish123456789", 0x8f55_2b0c_u32 as i32),
        (b"1234", 0x9fc9_7b14_u32 as i32),
        (b"", 0x106e_08d9),
    ];

    #[test]
    fn murmur2_matches_the_java_client() {
        for &(key, want) in GOLDEN {
            assert_eq!(murmur2(key), want, "key {:?}", String::from_utf8_lossy(key));
        }
    }

    #[test]
    fn keyed_partitions_match_the_java_client() {
        // toPositive(murmur2(key)) % n, from the values above.
        let table: &[(&[u8], usize, i32)] = &[
            (b"21", 3, 0),
            (b"foobar", 10, 6),
            (b"a-little-bit-longer-string", 6, 5),
            (b"abc", 6, 3),
            (b"abc", 10, 7),
            (b"kafka", 3, 1),
            (b"kafka", 6, 4),
            (b"giberish123456789", 3, 2),
            (b"", 10, 1),
            (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", 10, 7),
        ];
        for &(key, n, want) in table {
            assert_eq!(partition_for_key(key, n), want, "{key:?} % {n}");
        }
        // toPositive is a mask, not abs: abs(-973932308) % 7 would be 3.
        assert_eq!(
            partition_for_key(b"21", 7),
            (-973_932_308i32 & 0x7fff_ffff) % 7
        );
        assert_eq!(to_positive(i32::MIN), 0);
    }

    fn topic(partitions: usize, leaderless: &[i32]) -> TopicInfo {
        TopicInfo {
            name: "t".into(),
            topic_id: Uuid::ZERO,
            is_internal: false,
            partitions: (0..partitions as i32)
                .map(|p| PartitionInfo {
                    partition: p,
                    leader: (!leaderless.contains(&p)).then_some(NodeId(1)),
                    leader_epoch: 0,
                    replicas: vec![],
                    isr: vec![],
                    offline_replicas: vec![],
                    error: ErrorCode::None,
                })
                .collect(),
        }
    }

    #[test]
    fn sticky_partition_holds_for_a_batch_then_moves() {
        let t = topic(4, &[]);
        let mut s = StickyPartitioner::default();
        let first = s.partition(&t, 100, 1000);
        for _ in 0..9 {
            assert_eq!(s.partition(&t, 100, 1000), first);
        }
        // 1000 bytes went to `first`: the next record moves elsewhere.
        let next = s.partition(&t, 100, 1000);
        assert_ne!(next, first);
    }

    #[test]
    fn sticky_partition_prefers_partitions_with_a_leader() {
        let t = topic(3, &[0, 2]);
        let mut s = StickyPartitioner::default();
        for _ in 0..50 {
            assert_eq!(s.partition(&t, 10_000, 1), 1);
        }
    }
}
