//! One member of a classic group, and the protocols it supports.

use std::collections::HashSet;

use bytes::Bytes;

use super::{JoinSender, SyncSender};

/// One protocol a member supports: its name (the assignor) and its metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Protocol {
    /// The protocol name ("range", "cooperative-sticky", ...).
    pub(crate) name: String,
    /// The member's metadata for it (for consumers: the subscription), relayed to the
    /// leader untouched.
    pub(crate) metadata: Bytes,
}

/// A member of a classic group.
#[derive(Debug)]
pub(crate) struct Member {
    /// The id the coordinator gave it.
    pub(crate) id: String,
    /// `group.instance.id` of a static member.
    pub(crate) instance_id: Option<String>,
    /// The client id of its last JoinGroup.
    pub(crate) client_id: String,
    /// The address it joined from.
    pub(crate) client_host: String,
    /// How long a rebalance may wait for it to rejoin.
    pub(crate) rebalance_timeout_ms: i32,
    /// How long it may go without a heartbeat.
    pub(crate) session_timeout_ms: i32,
    /// Its protocol type (equal to the group's).
    pub(crate) protocol_type: String,
    /// Its protocols, in its order of preference.
    pub(crate) protocols: Vec<Protocol>,
    /// Its assignment in the current generation.
    pub(crate) assignment: Bytes,
    /// Its parked JoinGroup, if any.
    pub(super) awaiting_join: Option<JoinSender>,
    /// Its parked SyncGroup, if any.
    pub(super) awaiting_sync: Option<SyncSender>,
    /// Joined but not yet through a completed join phase: such a member's session
    /// can expire even while its JoinGroup is parked.
    pub(crate) is_new: bool,
}

impl Member {
    /// A member as a JoinGroup (or a loaded record) describes it.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        id: String,
        instance_id: Option<String>,
        client_id: String,
        client_host: String,
        rebalance_timeout_ms: i32,
        session_timeout_ms: i32,
        protocol_type: String,
        protocols: Vec<Protocol>,
    ) -> Member {
        Member {
            id,
            instance_id,
            client_id,
            client_host,
            rebalance_timeout_ms,
            session_timeout_ms,
            protocol_type,
            protocols,
            assignment: Bytes::new(),
            awaiting_join: None,
            awaiting_sync: None,
            is_new: false,
        }
    }

    /// Whether its JoinGroup is parked.
    pub(crate) fn is_awaiting_join(&self) -> bool {
        self.awaiting_join.is_some()
    }

    /// Whether its SyncGroup is parked.
    pub(crate) fn is_awaiting_sync(&self) -> bool {
        self.awaiting_sync.is_some()
    }

    /// Whether a session expiry should spare it: a member waiting on the coordinator
    /// cannot heartbeat, so it is not held to its session, unless it is new.
    pub(crate) fn has_satisfied_heartbeat(&self) -> bool {
        !self.is_new && (self.is_awaiting_join() || self.is_awaiting_sync())
    }

    /// Whether `protocols` are exactly its current ones (same names, metadata, order).
    pub(crate) fn matches(&self, protocols: &[Protocol]) -> bool {
        self.protocols == protocols
    }

    /// Its metadata for `protocol`.
    pub(crate) fn metadata(&self, protocol: &str) -> Option<&Bytes> {
        self.protocols
            .iter()
            .find(|p| p.name == protocol)
            .map(|p| &p.metadata)
    }

    /// Its first preference among `candidates`.
    pub(super) fn vote<'a>(&'a self, candidates: &HashSet<&str>) -> Option<&'a str> {
        self.protocols
            .iter()
            .map(|p| p.name.as_str())
            .find(|name| candidates.contains(name))
    }

    /// Parks (or clears) its SyncGroup.
    pub(crate) fn set_awaiting_sync(&mut self, sender: Option<SyncSender>) {
        self.awaiting_sync = sender;
    }
}
