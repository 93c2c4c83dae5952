//! Newtypes for the integers Kafka keeps apart: offsets, epochs and ids.
//!
//! They are `Copy`, ordered, and convert to and from their wire integer explicitly,
//! so a value only changes kind where a line of code says so.

use std::fmt;

macro_rules! newtype {
    ($(#[$doc:meta])* $name:ident($inner:ty)) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub $inner);

        impl $name {
            /// The wire value.
            pub const fn get(self) -> $inner {
                self.0
            }
        }

        impl From<$inner> for $name {
            fn from(v: $inner) -> Self {
                Self(v)
            }
        }

        impl From<$name> for $inner {
            fn from(v: $name) -> $inner {
                v.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

newtype!(
    /// The position of a record in a partition's log.
    Offset(i64)
);
newtype!(
    /// The epoch of a partition's leadership; bumps on every leader change and fences
    /// stale leaders. `-1` on the wire means "unknown".
    LeaderEpoch(i32)
);
newtype!(
    /// A broker or controller id (`node.id`).
    NodeId(i32)
);
newtype!(
    /// An idempotent or transactional producer's id; `-1` means "none".
    ProducerId(i64)
);
newtype!(
    /// The epoch of a producer id; a newer epoch fences older sessions of the same id.
    ProducerEpoch(i16)
);
newtype!(
    /// A producer's per-partition sequence number (wraps at `i32::MAX`).
    Sequence(i32)
);

impl Offset {
    /// Offset `n` records later.
    pub const fn plus(self, n: i64) -> Offset {
        Offset(self.0 + n)
    }
}

impl LeaderEpoch {
    /// "No epoch known", as Kafka writes it.
    pub const UNKNOWN: LeaderEpoch = LeaderEpoch(-1);
}

impl ProducerId {
    /// "Not an idempotent producer", as Kafka writes it.
    pub const NONE: ProducerId = ProducerId(-1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_order_and_add() {
        let a = Offset(5);
        assert!(a < a.plus(1));
        assert_eq!(a.plus(10).get(), 15);
        assert_eq!(i64::from(Offset::from(7)), 7);
    }
}
