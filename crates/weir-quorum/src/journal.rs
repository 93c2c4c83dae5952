//! `MetadataJournal` on the quorum: the controller's write path in a cluster.
//!
//! Only the active controller writes: the Raft leader, once it has applied an entry
//! of its own term (so its image holds every change committed before it took over —
//! KRaft's new controller likewise replays to its epoch's start before serving).
//! Anywhere else `append` fails with `NotController` naming the leader, and nothing
//! is written. On the leader a change is first replayed onto the current image, so
//! a change that does not apply is refused before it reaches the log; then it is
//! written with openraft's `client_write`, which returns once the entry is committed
//! by a majority and applied locally, and `append` returns the image that includes
//! it. The leader then pushes the commit to the followers at once (a heartbeat),
//! so their images follow within a round trip.
//!
//! # Errors of `append`
//!
//! - `NotController { leader }`: not the active controller; nothing was written.
//! - `Replay` / `TooManyRecords`: the change does not apply to the image, or is too
//!   large to replicate; nothing was written. (A `Replay` with the entry's offset
//!   means it was written and then skipped on every node — a bug, logged.)
//! - `Transport { node: self }`: the outcome is unknown — the leader lost its
//!   majority while committing, or the append timed out. The change may still be
//!   committed; a retry must tolerate finding it applied.
//! - `ControllerStopped`: the node is shutting down.

use std::sync::Arc;
use std::time::Duration;

use openraft::error::{ClientWriteError, RaftError};
use tokio::sync::watch;
use weir_metadata::store::MAX_RECORDS_PER_BATCH;
use weir_metadata::{MetadataError, MetadataImage, MetadataJournal, MetadataRecord};
use weir_types::{Clock, NodeId, Offset, SystemClock};

use crate::state_machine::check_change;
use crate::types::{weir_id, ControllerChange, Raft};

/// The journal of one quorum node; cheap to clone, all clones share the node.
#[derive(Clone)]
pub struct QuorumJournal {
    pub(crate) node_id: NodeId,
    pub(crate) raft: Raft,
    pub(crate) runtime: tokio::runtime::Handle,
    pub(crate) images: watch::Receiver<Arc<MetadataImage>>,
    pub(crate) active: watch::Receiver<Option<NodeId>>,
    /// How long a new leader may take to become active before `append` gives up.
    pub(crate) activation_timeout: Duration,
    /// How long `append` waits for commit and apply.
    pub(crate) append_timeout: Duration,
    /// The largest encoded change accepted: half a frame, so an entry always fits
    /// in one AppendEntries with room for the envelope.
    pub(crate) max_change_bytes: usize,
}

impl std::fmt::Debug for QuorumJournal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuorumJournal")
            .field("node_id", &self.node_id)
            .field("active", &*self.active.borrow())
            .field("offset", &self.images.borrow().offset())
            .finish_non_exhaustive()
    }
}

impl QuorumJournal {
    /// [`MetadataJournal::append`] for async callers (tests, tools): the same steps,
    /// awaited instead of blocked on.
    pub async fn append_async(
        &self,
        records: Vec<MetadataRecord>,
    ) -> weir_metadata::Result<Arc<MetadataImage>> {
        if records.is_empty() {
            return Ok(self.images.borrow().clone());
        }
        if records.len() > MAX_RECORDS_PER_BATCH {
            return Err(MetadataError::TooManyRecords(records.len()));
        }
        self.wait_until_active().await?;
        let encoded = records
            .iter()
            .map(|r| r.encode().map(|b| b.to_vec()))
            .collect::<Result<Vec<_>, _>>()?;
        let bytes: usize = encoded.iter().map(|r| r.len() + 5).sum();
        if bytes > self.max_change_bytes {
            // Replication could never carry it: refuse it before it is written.
            return Err(MetadataError::TooManyRecords(records.len()));
        }
        let change = ControllerChange {
            records: encoded,
            time_ms: SystemClock.now_ms(),
        };
        let image = self.images.borrow().clone();
        check_change(&image, &change).map_err(|reason| MetadataError::Replay {
            offset: self.next_offset().get(),
            reason,
        })?;
        let me = self.node_id;
        let mut active = self.active.clone();
        let written = tokio::select! {
            w = tokio::time::timeout(self.append_timeout, self.raft.client_write(change)) => w,
            // Cut off from the majority: the entry may still commit (if the
            // partition heals first) or be overwritten; say so now rather than
            // after the append timeout.
            _ = active.wait_for(|a| *a != Some(me)) => {
                return Err(MetadataError::Transport {
                    node: me,
                    reason: "lost the quorum while committing; the change may or may not be committed"
                        .into(),
                })
            }
        };
        let response = match written {
            Err(_) => {
                return Err(MetadataError::Transport {
                    node: self.node_id,
                    reason: format!(
                        "the change was not committed within {:?} (it may still be)",
                        self.append_timeout
                    ),
                })
            }
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
                return Err(MetadataError::NotController {
                    leader: f.leader_id.map(weir_id),
                })
            }
            Ok(Err(RaftError::APIError(e))) => {
                return Err(MetadataError::Transport {
                    node: self.node_id,
                    reason: e.to_string(),
                })
            }
            Ok(Err(RaftError::Fatal(e))) => {
                tracing::warn!(error = %e, "append on a stopped quorum node");
                return Err(MetadataError::ControllerStopped);
            }
            Ok(Ok(r)) => r,
        };
        let index = response.log_id.index as i64;
        if let Some(reason) = response.data.error {
            return Err(MetadataError::Replay {
                offset: index,
                reason,
            });
        }
        // Followers learn that the entry is committed from the next AppendEntries:
        // send it now rather than at the next heartbeat, so every node's image (and
        // the broker a forwarded request came from) catches up within a round trip.
        if let Err(e) = self.raft.trigger().heartbeat().await {
            tracing::debug!(error = %e, "no heartbeat after a commit");
        }
        // client_write answers after the local apply, which published the image.
        let mut images = self.images.clone();
        let image = images
            .wait_for(|i| i.offset().get() >= index)
            .await
            .map_err(|_| MetadataError::ControllerStopped)?
            .clone();
        Ok(image)
    }

    /// Returns once this node is the active controller; `NotController` if another
    /// node leads (or none becomes active in time).
    async fn wait_until_active(&self) -> weir_metadata::Result<()> {
        if *self.active.borrow() == Some(self.node_id) {
            return Ok(());
        }
        let leader = self.raft.metrics().borrow().current_leader;
        if leader != Some(crate::types::raft_id(self.node_id)) {
            return Err(MetadataError::NotController {
                leader: *self.active.borrow(),
            });
        }
        // Leader, but still applying what earlier leaders committed.
        let mut active = self.active.clone();
        let me = self.node_id;
        let became_active =
            tokio::time::timeout(self.activation_timeout, active.wait_for(|a| *a == Some(me)))
                .await
                .is_ok_and(|r| r.is_ok());
        if became_active {
            Ok(())
        } else {
            Err(MetadataError::NotController {
                leader: (*self.active.borrow()).filter(|a| *a != me),
            })
        }
    }
}

impl MetadataJournal for QuorumJournal {
    fn image(&self) -> Arc<MetadataImage> {
        self.images.borrow().clone()
    }

    fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.images.clone()
    }

    fn next_offset(&self) -> Offset {
        let last = self.raft.metrics().borrow().last_log_index;
        Offset(last.map_or(0, |i| i as i64 + 1))
    }

    fn active_controller(&self) -> watch::Receiver<Option<NodeId>> {
        self.active.clone()
    }

    /// Blocks the calling thread until the change is committed and applied (see the
    /// module docs). Meant for the controller's own OS thread; called from inside a
    /// multi-threaded tokio runtime it blocks in place, and from a current-thread
    /// runtime it panics (tokio cannot block there).
    fn append(&mut self, records: &[MetadataRecord]) -> weir_metadata::Result<Arc<MetadataImage>> {
        let fut = self.append_async(records.to_vec());
        if tokio::runtime::Handle::try_current().is_ok() {
            tokio::task::block_in_place(|| self.runtime.block_on(fut))
        } else {
            self.runtime.block_on(fut)
        }
    }
}
