//! Every message the controller listener carries survives postcard both ways, and
//! damaged payloads are errors, never panics.

use std::collections::BTreeMap;
use std::fmt::Debug;

use openraft::error::{Fatal, InstallSnapshotError, RaftError, SnapshotMismatch};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, EntryPayload, ErrorSubject, ErrorVerb, SnapshotSegmentId};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::*;
use crate::types::{storage_error, ControllerChange, Entry, LogId, SnapshotMeta, Vote};

fn log_id(term: u64, node: u64, index: u64) -> LogId {
    LogId::new(openraft::CommittedLeaderId::new(term, node), index)
}

/// Encodes, decodes, compares by Debug (openraft's messages lack PartialEq), and
/// checks that cut or padded payloads fail.
fn round_trip<T: Serialize + DeserializeOwned + Debug>(value: T) {
    let bytes = encode(&value).unwrap();
    let back: T = decode(&bytes).unwrap();
    assert_eq!(format!("{back:?}"), format!("{value:?}"));
    let mut padded = bytes.clone();
    padded.push(0);
    assert!(
        decode::<T>(&padded).is_err(),
        "trailing byte accepted: {value:?}"
    );
    if !bytes.is_empty() {
        // A cut payload is an error (or, rarely, a different valid value): never a panic.
        let _ = decode::<T>(&bytes[..bytes.len() - 1]);
    }
}

fn membership() -> openraft::Membership<u64, BasicNode> {
    let nodes: BTreeMap<u64, BasicNode> = (1..=3)
        .map(|i| (i, BasicNode::new(format!("127.0.0.1:{}", 9000 + i))))
        .collect();
    openraft::Membership::new(vec![(1..=3).collect()], nodes)
}

fn meta() -> SnapshotMeta {
    SnapshotMeta {
        last_log_id: Some(log_id(3, 2, 40)),
        last_membership: openraft::StoredMembership::new(Some(log_id(1, 1, 0)), membership()),
        snapshot_id: "3-40-0".into(),
    }
}

#[test]
fn every_rpc_and_reply_round_trips() {
    let vote = Vote::new_committed(3, 2);
    round_trip(Hello {
        cluster_id: "MkU3OEVBNTcwNTJENDM2Qk".into(),
        from: 1,
        to: 2,
    });
    round_trip(JoinRequest {
        node: 4,
        address: "[::1]:40404".into(),
    });
    for reply in [
        JoinReply::Joined,
        JoinReply::NotLeader { leader: Some(2) },
        JoinReply::NotLeader { leader: None },
    ] {
        round_trip(reply);
    }
    let entries: Vec<Entry> = vec![
        Entry {
            log_id: log_id(1, 1, 0),
            payload: EntryPayload::Membership(membership()),
        },
        Entry {
            log_id: log_id(3, 2, 1),
            payload: EntryPayload::Blank,
        },
        Entry {
            log_id: log_id(3, 2, 2),
            payload: EntryPayload::Normal(ControllerChange {
                records: vec![vec![1, 2, 3], vec![]],
                time_ms: 1_700_000_000_000,
            }),
        },
    ];
    round_trip(AppendEntriesRequest::<crate::types::TypeConfig> {
        vote,
        prev_log_id: Some(log_id(1, 1, 0)),
        entries,
        leader_commit: Some(log_id(3, 2, 1)),
    });
    round_trip(AppendEntriesRequest::<crate::types::TypeConfig> {
        vote,
        prev_log_id: None,
        entries: vec![],
        leader_commit: None,
    });
    for r in [
        AppendEntriesResponse::Success,
        AppendEntriesResponse::PartialSuccess(Some(log_id(3, 2, 5))),
        AppendEntriesResponse::Conflict,
        AppendEntriesResponse::HigherVote(Vote::new(4, 3)),
    ] {
        round_trip::<Result<AppendEntriesResponse<u64>, RaftError<u64>>>(Ok(r));
    }
    let storage = storage_error(ErrorSubject::Logs, ErrorVerb::Write, "disk on fire");
    for f in [
        Fatal::Stopped,
        Fatal::Panicked,
        Fatal::StorageError(storage),
    ] {
        round_trip::<Result<AppendEntriesResponse<u64>, RaftError<u64>>>(Err(RaftError::Fatal(f)));
    }
    round_trip(VoteRequest::new(Vote::new(5, 1), Some(log_id(3, 2, 9))));
    round_trip::<Result<VoteResponse<u64>, RaftError<u64>>>(Ok(VoteResponse {
        vote: Vote::new(5, 1),
        vote_granted: true,
        last_log_id: Some(log_id(3, 2, 9)),
    }));
    round_trip(InstallSnapshotRequest::<crate::types::TypeConfig> {
        vote,
        meta: meta(),
        offset: 1 << 20,
        data: vec![9; 1000],
        done: false,
    });
    round_trip::<Result<InstallSnapshotResponse<u64>, RaftError<u64, InstallSnapshotError>>>(Ok(
        InstallSnapshotResponse { vote },
    ));
    let seg = |offset| SnapshotSegmentId {
        id: "3-40-0".into(),
        offset,
    };
    round_trip::<Result<InstallSnapshotResponse<u64>, RaftError<u64, InstallSnapshotError>>>(Err(
        RaftError::APIError(InstallSnapshotError::SnapshotMismatch(SnapshotMismatch {
            expect: seg(0),
            got: seg(100),
        })),
    ));
}

#[test]
fn garbage_payloads_are_errors() {
    for junk in [
        &[][..],
        &[0xff; 3][..],
        &[0x80; 64][..],
        &b"not postcard at all"[..],
    ] {
        assert!(decode::<AppendEntriesRequest<crate::types::TypeConfig>>(junk).is_err());
        assert!(decode::<Hello>(junk).is_err() || junk.is_empty());
    }
    // A length prefix claiming far more elements than bytes does not allocate it.
    let mut claim = vec![0xff, 0xff, 0xff, 0xff, 0x0f];
    claim.extend_from_slice(&[1, 2, 3]);
    assert!(decode::<Vec<u64>>(&claim).is_err());
}
