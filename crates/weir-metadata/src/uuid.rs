//! Topic ids, incarnation ids and cluster ids: Kafka's UUIDs, their text form, and a
//! generator.
//!
//! Kafka prints a UUID as URL-safe base64 without padding (22 characters) — the form
//! of `cluster.id` in `meta.properties` and of topic ids in tools. The generator is a
//! parameter of the controller (seeded in tests), not a global, so a simulation can
//! make ids reproducible.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{SystemTime, UNIX_EPOCH};

use weir_protocol::Uuid;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Kafka's text form of `id`: URL-safe base64 of the 16 bytes, without padding.
pub fn to_base64(id: Uuid) -> String {
    let b = id.0;
    let mut out = String::with_capacity(22);
    for chunk in b.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &x)| acc | u32::from(x) << (16 - 8 * i));
        let chars = chunk.len() + 1;
        for i in 0..chars {
            let idx = (n >> (18 - 6 * i)) & 63;
            out.push(char::from(ALPHABET[idx as usize]));
        }
    }
    out
}

/// Parses Kafka's text form; `None` unless it is exactly 22 base64url characters
/// encoding 16 bytes.
pub fn from_base64(s: &str) -> Option<Uuid> {
    let s = s.as_bytes();
    if s.len() != 22 {
        return None;
    }
    let mut bits: u32 = 0;
    let mut nbits = 0;
    let mut out = [0u8; 16];
    let mut n = 0;
    for &c in s {
        let v = ALPHABET.iter().position(|&a| a == c)?;
        bits = (bits << 6) | v as u32;
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            *out.get_mut(n)? = (bits >> nbits) as u8;
            n += 1;
            bits &= (1 << nbits) - 1;
        }
    }
    // 22 chars carry 132 bits: the 4 left over must be zero, as in canonical base64.
    (n == 16 && bits == 0).then_some(Uuid(out))
}

/// Makes random (version 4) UUIDs the way Kafka's `Uuid.randomUuid` does: never the
/// all-zero id, never the reserved metadata topic id (…0001), and never one whose
/// text form starts with '-' (it would read as a command-line flag).
#[derive(Debug, Clone)]
pub struct UuidGenerator {
    state: u64,
}

impl UuidGenerator {
    /// A generator seeded from the OS (through std's random hasher keys) and the
    /// time: ids differ across processes and restarts.
    pub fn from_entropy() -> Self {
        let mut h = RandomState::new().build_hasher();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        h.write_u128(nanos);
        h.write_u32(std::process::id());
        UuidGenerator { state: h.finish() }
    }

    /// A reproducible generator, for tests and simulations.
    pub fn seeded(seed: u64) -> Self {
        UuidGenerator { state: seed }
    }

    /// The next random id.
    pub fn next_uuid(&mut self) -> Uuid {
        loop {
            let hi = self.next_u64().to_be_bytes();
            let lo = self.next_u64().to_be_bytes();
            let mut b = [0u8; 16];
            b[..8].copy_from_slice(&hi);
            b[8..].copy_from_slice(&lo);
            b[6] = (b[6] & 0x0f) | 0x40; // version 4
            b[8] = (b[8] & 0x3f) | 0x80; // IETF variant
            let id = Uuid(b);
            if id != Uuid::ZERO && id != METADATA_TOPIC_ID && !to_base64(id).starts_with('-') {
                return id;
            }
        }
    }

    /// splitmix64: small, fast, and good enough for ids that only need to be unique.
    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// The id Kafka reserves for the `__cluster_metadata` topic.
pub const METADATA_TOPIC_ID: Uuid = Uuid([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_kafka_text_form() {
        // Kafka prints Uuid(0, 1) (the metadata topic id) as AAAAAAAAAAAAAAAAAAAAAQ.
        assert_eq!(to_base64(METADATA_TOPIC_ID), "AAAAAAAAAAAAAAAAAAAAAQ");
        assert_eq!(to_base64(Uuid::ZERO), "AAAAAAAAAAAAAAAAAAAAAA");
        assert_eq!(to_base64(Uuid([0xff; 16])), "_____________________w");
    }

    #[test]
    fn base64_round_trips_and_rejects_junk() {
        let mut g = UuidGenerator::seeded(7);
        for _ in 0..200 {
            let id = g.next_uuid();
            let s = to_base64(id);
            assert_eq!(s.len(), 22);
            assert_eq!(from_base64(&s), Some(id));
        }
        assert_eq!(from_base64("short"), None);
        assert_eq!(from_base64("AAAAAAAAAAAAAAAAAAAA*Q"), None);
        // Non-zero leftover bits are not a canonical encoding.
        assert_eq!(from_base64("AAAAAAAAAAAAAAAAAAAAAB"), None);
    }

    #[test]
    fn generated_ids_are_v4_distinct_and_never_reserved() {
        let mut g = UuidGenerator::seeded(1);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..1000 {
            let id = g.next_uuid();
            assert_eq!(id.0[6] >> 4, 4);
            assert!(id != Uuid::ZERO && id != METADATA_TOPIC_ID);
            assert!(!to_base64(id).starts_with('-'));
            assert!(seen.insert(id));
        }
        assert_eq!(
            UuidGenerator::seeded(3).next_uuid(),
            UuidGenerator::seeded(3).next_uuid()
        );
        assert_ne!(
            UuidGenerator::from_entropy().next_uuid(),
            UuidGenerator::from_entropy().next_uuid()
        );
    }
}
