//! The Raft log and state machine against openraft's own storage test suite, plus
//! what the suite does not cover: durability across reopen, purging past the log,
//! a torn tail, an append over entries the log already holds.

use std::fs::OpenOptions;
use std::io::Write;

use openraft::storage::{RaftLogStorage, RaftLogStorageExt};
use openraft::testing::{StoreBuilder, Suite};
use openraft::{EntryPayload, RaftLogReader};

use super::*;
use crate::state_machine::StateMachine;
use crate::types::{ControllerChange, TypeConfig};

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for Builder {
    async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError> {
        let dir = tempfile::tempdir().map_err(|e| read_err(e.to_string()))?;
        let log = LogStore::open(dir.path()).map_err(|e| read_err(e.to_string()))?;
        let (sm, _) = StateMachine::open(dir.path().to_path_buf(), "test-cluster".into())
            .map_err(|e| read_err(e.to_string()))?;
        Ok((dir, log, sm))
    }
}

#[test]
fn passes_the_openraft_storage_suite() {
    Suite::test_all(Builder).unwrap();
}

fn id(term: u64, index: u64) -> LogId {
    LogId::new(openraft::CommittedLeaderId::new(term, 1), index)
}

fn entries(term: u64, range: std::ops::Range<u64>) -> Vec<Entry> {
    range
        .map(|i| Entry {
            log_id: id(term, i),
            payload: if i % 2 == 0 {
                EntryPayload::Blank
            } else {
                EntryPayload::Normal(ControllerChange {
                    records: vec![vec![i as u8; 3]],
                    time_ms: 1000 + i as i64,
                })
            },
        })
        .collect()
}

async fn indexes(store: &mut LogStore, range: std::ops::Range<u64>) -> Vec<(u64, u64)> {
    store
        .try_get_log_entries(range)
        .await
        .unwrap()
        .iter()
        .map(|e| (e.log_id.leader_id.term, e.log_id.index))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn entries_vote_and_purge_point_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut s = LogStore::open(dir.path()).unwrap();
        s.blocking_append(entries(1, 0..6)).await.unwrap();
        s.truncate(id(1, 4)).await.unwrap();
        s.blocking_append(entries(2, 4..8)).await.unwrap();
        s.purge(id(1, 2)).await.unwrap();
        s.save_vote(&Vote::new_committed(2, 1)).await.unwrap();
    }
    let mut s = LogStore::open(dir.path()).unwrap();
    let state = s.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id, Some(id(1, 2)));
    assert_eq!(state.last_log_id, Some(id(2, 7)));
    assert_eq!(
        indexes(&mut s, 0..100).await,
        vec![(1, 3), (2, 4), (2, 5), (2, 6), (2, 7)]
    );
    let e = s.try_get_log_entries(5..6).await.unwrap();
    assert_eq!(e[0].payload, entries(2, 5..6)[0].payload);
    assert_eq!(
        s.read_vote().await.unwrap(),
        Some(Vote::new_committed(2, 1))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_purge_past_the_log_restarts_it_there() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = LogStore::open(dir.path()).unwrap();
    s.blocking_append(entries(1, 0..3)).await.unwrap();
    // A snapshot up to 10 was installed: everything up to it goes.
    s.purge(id(2, 10)).await.unwrap();
    let state = s.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id, Some(id(2, 10)));
    assert_eq!(state.last_log_id, Some(id(2, 10)));
    assert!(indexes(&mut s, 0..100).await.is_empty());
    s.blocking_append(entries(2, 11..13)).await.unwrap();
    drop(s);
    let mut s = LogStore::open(dir.path()).unwrap();
    assert_eq!(indexes(&mut s, 0..100).await, vec![(2, 11), (2, 12)]);
    assert_eq!(
        s.get_log_state().await.unwrap().last_log_id,
        Some(id(2, 12))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_torn_tail_is_cut_on_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut s = LogStore::open(dir.path()).unwrap();
        s.blocking_append(entries(1, 0..4)).await.unwrap();
    }
    // Half a batch after the last entry, as a crash mid-write leaves it.
    let seg = dir.path().join("00000000000000000000.log");
    let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
    f.write_all(&[0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 200, 1, 2])
        .unwrap();
    drop(f);
    let mut s = LogStore::open(dir.path()).unwrap();
    assert_eq!(s.get_log_state().await.unwrap().last_log_id, Some(id(1, 3)));
    s.blocking_append(entries(1, 4..5)).await.unwrap();
    assert_eq!(indexes(&mut s, 0..100).await.len(), 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_append_over_held_entries_keeps_them_and_cuts_only_at_a_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = LogStore::open(dir.path()).unwrap();
    s.blocking_append(entries(1, 0..5)).await.unwrap();
    let held = s.try_get_log_entries(0..5).await.unwrap();
    // The same ids again (with other payloads, which openraft never sends: they
    // show whether the stored entries were written again), then two new ones.
    let mut again = entries(1, 3..7);
    for e in &mut again[..2] {
        e.payload = EntryPayload::Normal(ControllerChange {
            records: vec![b"rewritten".to_vec()],
            time_ms: 1,
        });
    }
    s.blocking_append(again).await.unwrap();
    assert_eq!(s.try_get_log_entries(0..5).await.unwrap(), held);
    assert_eq!(
        indexes(&mut s, 0..100).await,
        (0..7).map(|i| (1, i)).collect::<Vec<_>>()
    );
    // Entries all held already: nothing changes, the tail after them included.
    s.blocking_append(entries(1, 1..3)).await.unwrap();
    assert_eq!(indexes(&mut s, 0..100).await.len(), 7);
    assert_eq!(s.get_log_state().await.unwrap().last_log_id, Some(id(1, 6)));
    // A conflict at 5 (a later term): kept up to 4, replaced from 5.
    let mut mixed = entries(1, 3..5);
    mixed.extend(entries(2, 5..6));
    s.blocking_append(mixed).await.unwrap();
    assert_eq!(s.try_get_log_entries(0..5).await.unwrap(), held);
    assert_eq!(
        indexes(&mut s, 0..100).await,
        vec![(1, 0), (1, 1), (1, 2), (1, 3), (1, 4), (2, 5)]
    );
    assert_eq!(s.get_log_state().await.unwrap().last_log_id, Some(id(2, 5)));
    drop(s);
    let mut s = LogStore::open(dir.path()).unwrap();
    assert_eq!(s.try_get_log_entries(0..5).await.unwrap(), held);
    assert_eq!(indexes(&mut s, 0..100).await.len(), 6);
}
