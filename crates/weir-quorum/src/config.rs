//! The configuration of one quorum node.
//!
//! Every node of a quorum is given the same voter set (`controller.quorum.voters` in
//! Kafka's terms: node id -> the host:port of its controller listener) and its own
//! id and data directory. Timing defaults follow KRaft's
//! (`controller.quorum.election.timeout.ms` 1000, `controller.quorum.fetch.timeout.ms`
//! 2000 with followers fetching every few hundred ms): an election timeout picked in
//! 1-2 s, heartbeats every 200 ms.
//!
//! A node that is not a voter (a broker-only node, `process.roles=broker`) joins as
//! a learner: it receives and applies the committed metadata log but never votes
//! nor counts towards a commit. openraft's leader pushes the log to its learners, so
//! such a node serves a listener of its own and names it in `learner_address`; it
//! asks the leader to add it (see `learner`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use weir_protocol::Uuid;
use weir_types::NodeId;

use crate::error::QuorumError;

/// The configuration of one quorum node; see the module docs.
#[derive(Debug, Clone)]
pub struct QuorumConfig {
    /// This node's id: one of `voters`, or a learner's id (then `learner_address`
    /// is set).
    pub node_id: NodeId,
    /// Every voter: node id -> `host:port` of its controller listener. The same on
    /// every node. Ids must be >= 0.
    pub voters: BTreeMap<NodeId, String>,
    /// The node's data directory; the Raft log, vote and snapshots live in
    /// `<data_dir>/__cluster_metadata-0/`.
    pub data_dir: PathBuf,
    /// The cluster id; `None` derives it from the voter ids (see
    /// [`QuorumConfig::cluster_id`]). Every node must end up with the same one.
    pub cluster_id: Option<String>,
    /// A follower that hears no leader for a random time in
    /// `[election_timeout_min, election_timeout_max)` starts an election.
    /// Default 1 s; must exceed `heartbeat_interval`.
    pub election_timeout_min: Duration,
    /// Default 2 s; must exceed `election_timeout_min`.
    pub election_timeout_max: Duration,
    /// How often the leader sends heartbeats. Default 200 ms.
    pub heartbeat_interval: Duration,
    /// Build a snapshot after this many entries since the last one; the log below a
    /// snapshot is then purged. Default 10 000; minimum 1.
    pub snapshot_threshold: u64,
    /// The largest frame read or written on the controller listener (Kafka's
    /// `socket.request.max.bytes` is 100 MiB; metadata frames are far smaller).
    /// Default 32 MiB; minimum 64 KiB.
    pub max_frame_bytes: usize,
    /// How long a controller call (`ControllerTransport::call`) may take, from
    /// connecting to the reply. Default 30 s.
    pub call_timeout: Duration,
    /// How long `MetadataJournal::append` waits for its change to be committed and
    /// applied. Default 30 s.
    pub append_timeout: Duration,
    /// Where the leader reaches this node when it is a learner (not one of
    /// `voters`): `host:port` of the listener given to `Quorum::start`. A voter is
    /// reached at its `voters` entry and leaves this `None`. The address may change
    /// between runs: the learner tells the leader its current one when it joins.
    pub learner_address: Option<String>,
}

impl QuorumConfig {
    /// A configuration with the defaults of the module docs.
    pub fn new(
        node_id: NodeId,
        voters: BTreeMap<NodeId, String>,
        data_dir: impl Into<PathBuf>,
    ) -> QuorumConfig {
        QuorumConfig {
            node_id,
            voters,
            data_dir: data_dir.into(),
            cluster_id: None,
            election_timeout_min: Duration::from_millis(1000),
            election_timeout_max: Duration::from_millis(2000),
            heartbeat_interval: Duration::from_millis(200),
            snapshot_threshold: 10_000,
            max_frame_bytes: 32 << 20,
            call_timeout: Duration::from_secs(30),
            append_timeout: Duration::from_secs(30),
            learner_address: None,
        }
    }

    /// Checks the configuration; the error says what is wrong.
    pub fn validate(&self) -> Result<(), QuorumError> {
        let bad = |m: String| Err(QuorumError::Config(m));
        if self.voters.is_empty() {
            return bad("no voters".into());
        }
        if let Some(id) = self.voters.keys().find(|id| id.get() < 0) {
            return bad(format!("voter id {id} is negative"));
        }
        if let Some((id, _)) = self.voters.iter().find(|(_, a)| a.trim().is_empty()) {
            return bad(format!("voter {id} has no address"));
        }
        if self.node_id.get() < 0 {
            return bad(format!("node id {} is negative", self.node_id));
        }
        match (
            &self.learner_address,
            self.voters.contains_key(&self.node_id),
        ) {
            (None, false) => {
                return bad(format!(
                    "node {} is not one of the voters {:?} and has no learner address: give \
                     it one to join as a learner",
                    self.node_id,
                    self.voters.keys().collect::<Vec<_>>()
                ))
            }
            (Some(_), true) => {
                return bad(format!(
                    "node {} is a voter, reached at its voters entry: a learner address is \
                     for a node outside the voters",
                    self.node_id
                ))
            }
            (Some(a), false) if a.trim().is_empty() => {
                return bad(format!("learner {} has an empty address", self.node_id))
            }
            _ => {}
        }
        if self.heartbeat_interval.is_zero() {
            return bad("heartbeat_interval must be > 0".into());
        }
        if self.election_timeout_min <= self.heartbeat_interval {
            return bad(format!(
                "election_timeout_min ({:?}) must exceed heartbeat_interval ({:?})",
                self.election_timeout_min, self.heartbeat_interval
            ));
        }
        if self.election_timeout_max <= self.election_timeout_min {
            return bad(format!(
                "election_timeout_max ({:?}) must exceed election_timeout_min ({:?})",
                self.election_timeout_max, self.election_timeout_min
            ));
        }
        if self.snapshot_threshold == 0 {
            return bad("snapshot_threshold must be >= 1".into());
        }
        if self.max_frame_bytes < 64 << 10 {
            return bad(format!(
                "max_frame_bytes {} is below the 64 KiB minimum",
                self.max_frame_bytes
            ));
        }
        if let Some(c) = &self.cluster_id {
            if c.trim().is_empty() {
                return bad("cluster_id is empty".into());
            }
        }
        Ok(())
    }

    /// The cluster id: the configured one, or one derived from the sorted voter ids.
    ///
    /// Derived from the ids only, not the addresses: a voter may move to another
    /// host without the cluster changing identity. Two clusters with the same voter
    /// ids thus share a derived id; give `cluster_id` explicitly to tell them apart.
    /// The derived id has Kafka's form (22 characters of URL-safe base64).
    pub fn cluster_id(&self) -> String {
        if let Some(c) = &self.cluster_id {
            return c.clone();
        }
        let mut text = String::from("weir-quorum:");
        for id in self.voters.keys() {
            text.push_str(&id.to_string());
            text.push(',');
        }
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&fnv1a(0xcbf2_9ce4_8422_2325, text.as_bytes()).to_be_bytes());
        bytes[8..].copy_from_slice(&fnv1a(0x6c62_272e_07bb_0142, text.as_bytes()).to_be_bytes());
        weir_metadata::uuid::to_base64(Uuid(bytes))
    }

    /// True for a node outside the voters: it joins as a learner.
    pub fn is_learner(&self) -> bool {
        !self.voters.contains_key(&self.node_id)
    }

    /// The openraft configuration this node runs with.
    pub(crate) fn raft_config(&self) -> Result<openraft::Config, QuorumError> {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let config = openraft::Config {
            cluster_name: self.cluster_id(),
            election_timeout_min: ms(self.election_timeout_min),
            election_timeout_max: ms(self.election_timeout_max),
            heartbeat_interval: ms(self.heartbeat_interval),
            // AppendEntries and snapshot chunks must fit in one frame with room for
            // the envelope; a too-large AppendEntries is also split on demand.
            max_payload_entries: 64,
            snapshot_max_chunk_size: (self.max_frame_bytes / 2) as u64,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(self.snapshot_threshold),
            // Keep no log below a snapshot: a lagging node gets the snapshot.
            max_in_snapshot_log_to_keep: 0,
            install_snapshot_timeout: 10_000,
            ..openraft::Config::default()
        };
        config
            .validate()
            .map_err(|e| QuorumError::Config(e.to_string()))
    }
}

/// 64-bit FNV-1a from `seed`: a stable hash (the std hasher may change between
/// releases, and the derived cluster id must not).
fn fnv1a(seed: u64, data: &[u8]) -> u64 {
    data.iter().fold(seed, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn voters(ids: &[i32]) -> BTreeMap<NodeId, String> {
        ids.iter()
            .map(|&i| (NodeId(i), format!("127.0.0.1:{}", 9000 + i)))
            .collect()
    }

    #[test]
    fn the_derived_cluster_id_depends_on_the_voter_ids_only() {
        let a = QuorumConfig::new(NodeId(1), voters(&[1, 2, 3]), "/x");
        let mut b = QuorumConfig::new(NodeId(3), voters(&[3, 2, 1]), "/y");
        b.voters.insert(NodeId(2), "elsewhere:1".into());
        assert_eq!(a.cluster_id(), b.cluster_id());
        assert_eq!(a.cluster_id().len(), 22);
        let c = QuorumConfig::new(NodeId(1), voters(&[1, 2, 4]), "/x");
        assert_ne!(a.cluster_id(), c.cluster_id());
        let mut d = a.clone();
        d.cluster_id = Some("given".into());
        assert_eq!(d.cluster_id(), "given");
    }

    #[test]
    fn validate_explains_what_is_wrong() {
        let ok = QuorumConfig::new(NodeId(1), voters(&[1, 2, 3]), "/x");
        assert!(ok.validate().is_ok());
        assert!(ok.raft_config().is_ok());
        let mut c = ok.clone();
        c.node_id = NodeId(9);
        assert!(c.validate().unwrap_err().to_string().contains("not one of"));
        c.learner_address = Some("127.0.0.1:9999".into());
        assert!(c.validate().is_ok() && c.is_learner());
        c.learner_address = Some(" ".into());
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("empty address"));
        let mut c = ok.clone();
        c.learner_address = Some("127.0.0.1:9999".into());
        assert!(c.validate().unwrap_err().to_string().contains("is a voter"));
        assert!(!ok.is_learner());
        let mut c = ok.clone();
        c.voters = voters(&[-1, 1]);
        assert!(c.validate().is_err());
        let mut c = ok.clone();
        c.election_timeout_max = c.election_timeout_min;
        assert!(c.validate().is_err());
        let mut c = ok.clone();
        c.snapshot_threshold = 0;
        assert!(c.validate().is_err());
    }
}
