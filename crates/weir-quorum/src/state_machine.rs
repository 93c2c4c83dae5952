//! The state machine: committed entries applied to the metadata image.
//!
//! Each committed controller change is replayed onto a [`MetadataDelta`] of the
//! current image, and the new `Arc<MetadataImage>` is published on a watch channel
//! (what `MetadataJournal::subscribe` hands out). The image's offset is always the
//! index of the last applied entry: a change's records all take its index (they are
//! replayed at offsets of their own, since a delta wants increasing offsets, and the
//! image is then stamped with the entry's index, term and time), and blank and
//! membership entries move the offset without changing anything else.
//!
//! A change that does not decode or replay, or that breaks an image invariant, is a
//! bug in its writer. It must not stop the node (every node would stop at the same
//! entry, and again after every restart), so it is skipped whole — the image keeps
//! its content — with an error log line on every node, and its writer gets the
//! reason back. Skipping depends only on the entry and the image, so every node
//! skips the same entries and the images stay equal.
//!
//! Snapshots are the image written as records ([`snapshot`](crate::snapshot)); the
//! state machine is in memory and restarts from the newest snapshot plus the
//! committed entries after it.

use std::io::Cursor;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, ErrorSubject, ErrorVerb, OptionalSend, RaftSnapshotBuilder};
use tokio::sync::watch;
use weir_metadata::{MetadataDelta, MetadataImage, MetadataProvenance, MetadataRecord};
use weir_types::Offset;

use crate::error::QuorumError;
use crate::snapshot::{self, SnapshotBody};
use crate::types::{
    storage_error, ApplyOutcome, ControllerChange, Entry, LogId, SnapshotMeta, StorageError,
    StoredMembership, TypeConfig,
};

/// What snapshot building, installing and reading share.
struct Shared {
    /// The directory of the snapshot files.
    dir: PathBuf,
    /// The cluster the images belong to.
    cluster_id: String,
    /// Serialises writes and reads of snapshot files.
    files: Mutex<()>,
    /// Makes snapshot ids unique within the process.
    builds: AtomicU64,
}

/// The state machine; see the module docs.
pub(crate) struct StateMachine {
    shared: Arc<Shared>,
    /// The image of every applied entry.
    image: Arc<MetadataImage>,
    /// The last applied entry.
    last_applied: Option<LogId>,
    /// The membership as of `last_applied`.
    membership: StoredMembership,
    /// Where images are published.
    images: watch::Sender<Arc<MetadataImage>>,
}

impl StateMachine {
    /// The state machine of `dir`: the newest snapshot's image, or the empty image of
    /// `cluster_id`. Returns it with the channel its images go to.
    pub(crate) fn open(
        dir: PathBuf,
        cluster_id: String,
    ) -> Result<(StateMachine, watch::Receiver<Arc<MetadataImage>>), QuorumError> {
        let (image, last_applied, membership) = match snapshot::read_latest(&dir)? {
            Some((body, _)) => {
                if body.cluster_id != cluster_id {
                    return Err(QuorumError::Identity {
                        path: dir,
                        reason: format!(
                            "the snapshot belongs to cluster {}, not {cluster_id}",
                            body.cluster_id
                        ),
                    });
                }
                let meta = body.meta();
                tracing::info!(last_log_id = ?meta.last_log_id, records = body.records.len(), "loaded the metadata snapshot");
                (body.image()?, meta.last_log_id, meta.last_membership)
            }
            None => (
                MetadataImage::empty(cluster_id.clone()),
                None,
                StoredMembership::default(),
            ),
        };
        let image = Arc::new(image);
        let (images, rx) = watch::channel(Arc::clone(&image));
        let shared = Arc::new(Shared {
            dir,
            cluster_id,
            files: Mutex::new(()),
            builds: AtomicU64::new(0),
        });
        let sm = StateMachine {
            shared,
            image,
            last_applied,
            membership,
            images,
        };
        Ok((sm, rx))
    }

    /// Moves the image to `provenance` without changing its content.
    fn restamp(&mut self, provenance: MetadataProvenance) {
        self.image = Arc::new((*self.image).clone().with_provenance(provenance));
    }

    /// Applies one controller change at `log_id`; see the module docs for failures.
    fn apply_change(&mut self, log_id: &LogId, change: &ControllerChange) -> ApplyOutcome {
        let provenance = MetadataProvenance {
            last_offset: Offset(log_id.index as i64),
            last_epoch: i32::try_from(log_id.leader_id.term).unwrap_or(i32::MAX),
            last_log_time_ms: change.time_ms,
        };
        match replay_change(&self.image, change, provenance) {
            Ok(image) => {
                self.image = Arc::new(image);
                ApplyOutcome { error: None }
            }
            Err(reason) => {
                tracing::error!(entry = %log_id, records = change.records.len(), %reason,
                    "BUG: a committed controller change does not apply; skipping it on every node");
                let time = self.image.provenance().last_log_time_ms;
                self.restamp(MetadataProvenance {
                    last_log_time_ms: time,
                    ..provenance
                });
                ApplyOutcome {
                    error: Some(reason),
                }
            }
        }
    }

    /// Makes `body` (already checked) the state.
    fn load(&mut self, body: &SnapshotBody) -> Result<(), QuorumError> {
        if body.cluster_id != self.shared.cluster_id {
            return Err(QuorumError::Identity {
                path: self.shared.dir.clone(),
                reason: format!(
                    "a snapshot of cluster {} was sent to cluster {}",
                    body.cluster_id, self.shared.cluster_id
                ),
            });
        }
        let meta = body.meta();
        self.image = Arc::new(body.image()?);
        self.last_applied = meta.last_log_id;
        self.membership = meta.last_membership;
        self.images.send_replace(Arc::clone(&self.image));
        Ok(())
    }
}

/// The image after `change` on top of `base`, at `provenance`, or why it does not
/// apply.
fn replay_change(
    base: &Arc<MetadataImage>,
    change: &ControllerChange,
    provenance: MetadataProvenance,
) -> Result<MetadataImage, String> {
    let mut delta = MetadataDelta::new(Arc::clone(base));
    let first = base.offset().get().max(-1) + 1;
    for (i, frame) in change.records.iter().enumerate() {
        let record = MetadataRecord::decode(Bytes::copy_from_slice(frame))
            .map_err(|e| format!("record {i}: {e}"))?;
        delta
            .replay(
                Offset(first + i as i64),
                provenance.last_epoch,
                provenance.last_log_time_ms,
                &record,
            )
            .map_err(|e| format!("record {i} ({}): {e}", record.type_name()))?;
    }
    let image = delta.apply().with_provenance(provenance);
    image
        .check_invariants()
        .map_err(|e| format!("image invariant: {e}"))?;
    Ok(image)
}

/// Checks that `records` apply to `base` (the leader's check before it writes).
pub(crate) fn check_change(
    base: &Arc<MetadataImage>,
    change: &ControllerChange,
) -> Result<(), String> {
    replay_change(base, change, base.provenance()).map(|_| ())
}

fn sm_err(verb: ErrorVerb, e: impl std::fmt::Display) -> StorageError {
    storage_error(ErrorSubject::StateMachine, verb, e)
}

fn snapshot_err(verb: ErrorVerb, e: impl std::fmt::Display) -> StorageError {
    storage_error(ErrorSubject::Snapshot(None), verb, e)
}

/// Builds a snapshot of the state as it was when the builder was made.
pub(crate) struct SnapshotBuilder {
    shared: Arc<Shared>,
    image: Arc<MetadataImage>,
    last_applied: Option<LogId>,
    membership: StoredMembership,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<openraft::Snapshot<TypeConfig>, StorageError> {
        let n = self.shared.builds.fetch_add(1, Ordering::Relaxed);
        let (index, term) = self
            .last_applied
            .map_or((0, 0), |l| (l.index, l.leader_id.term));
        let meta = SnapshotMeta {
            last_log_id: self.last_applied,
            last_membership: self.membership.clone(),
            snapshot_id: format!("{term}-{index}-{n}"),
        };
        let shared = Arc::clone(&self.shared);
        let image = Arc::clone(&self.image);
        let meta2 = meta.clone();
        let bytes = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, QuorumError> {
            let body = SnapshotBody::of(&image, &meta2)?;
            let bytes = body.encode()?;
            let _files = shared
                .files
                .lock()
                .map_err(|_| QuorumError::Raft("snapshot lock poisoned".into()))?;
            snapshot::write(&shared.dir, &body, &bytes)?;
            Ok(bytes)
        })
        .await
        .map_err(|e| snapshot_err(ErrorVerb::Write, e))?
        .map_err(|e| snapshot_err(ErrorVerb::Write, e))?;
        tracing::info!(last_log_id = ?meta.last_log_id, bytes = bytes.len(), "metadata snapshot built");
        Ok(openraft::Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        Ok((self.last_applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<ApplyOutcome>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut out = Vec::new();
        for entry in entries {
            let log_id = entry.log_id;
            // Entries apply once each, in order (checked in release builds too).
            assert!(
                self.last_applied.is_none_or(|l| l.index < log_id.index),
                "apply of {log_id} after {:?}",
                self.last_applied
            );
            let outcome = match &entry.payload {
                EntryPayload::Normal(change) => self.apply_change(&log_id, change),
                EntryPayload::Blank | EntryPayload::Membership(_) => {
                    if let EntryPayload::Membership(m) = &entry.payload {
                        self.membership = StoredMembership::new(Some(log_id), m.clone());
                    }
                    let p = self.image.provenance();
                    self.restamp(MetadataProvenance {
                        last_offset: Offset(log_id.index as i64),
                        last_epoch: i32::try_from(log_id.leader_id.term).unwrap_or(i32::MAX),
                        last_log_time_ms: p.last_log_time_ms,
                    });
                    ApplyOutcome { error: None }
                }
            };
            self.last_applied = Some(log_id);
            out.push(outcome);
        }
        self.images.send_replace(Arc::clone(&self.image));
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            shared: Arc::clone(&self.shared),
            image: Arc::clone(&self.image),
            last_applied: self.last_applied,
            membership: self.membership.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let bytes = snapshot.into_inner();
        let body = SnapshotBody::decode(&bytes).map_err(|e| snapshot_err(ErrorVerb::Read, e))?;
        if body.last_log_id.map(LogId::from) != meta.last_log_id {
            return Err(snapshot_err(
                ErrorVerb::Read,
                format!(
                    "snapshot bytes are at {:?}, its meta says {:?}",
                    body.last_log_id, meta.last_log_id
                ),
            ));
        }
        let shared = Arc::clone(&self.shared);
        let body2 = body.clone();
        tokio::task::spawn_blocking(move || -> Result<(), QuorumError> {
            let _files = shared
                .files
                .lock()
                .map_err(|_| QuorumError::Raft("snapshot lock poisoned".into()))?;
            snapshot::write(&shared.dir, &body2, &bytes)
        })
        .await
        .map_err(|e| snapshot_err(ErrorVerb::Write, e))?
        .map_err(|e| snapshot_err(ErrorVerb::Write, e))?;
        self.load(&body).map_err(|e| sm_err(ErrorVerb::Write, e))?;
        tracing::info!(last_log_id = ?meta.last_log_id, "installed a metadata snapshot from the leader");
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<openraft::Snapshot<TypeConfig>>, StorageError> {
        let shared = Arc::clone(&self.shared);
        let latest = tokio::task::spawn_blocking(move || {
            let _files = shared
                .files
                .lock()
                .map_err(|_| QuorumError::Raft("snapshot lock poisoned".into()))?;
            snapshot::read_latest(&shared.dir)
        })
        .await
        .map_err(|e| snapshot_err(ErrorVerb::Read, e))?
        .map_err(|e| snapshot_err(ErrorVerb::Read, e))?;
        Ok(latest.map(|(body, bytes)| openraft::Snapshot {
            meta: body.meta(),
            snapshot: Box::new(Cursor::new(bytes)),
        }))
    }
}

#[cfg(test)]
#[path = "state_machine_tests.rs"]
mod tests;
