//! Producer ids that never repeat, across restarts and crashes.
//!
//! An idempotent producer's id keys its sequence numbers in every partition's
//! producer state, which survives restarts. Handing the same id to two producers
//! would make one's batches look like the other's duplicates or gaps, so ids must
//! never be reused. Kafka's controller hands out ids in blocks recorded in the
//! metadata log; the single-node controller has no such record yet, so the block is
//! kept here in a small file in the first data directory, `producer-id-block`,
//! holding the end (exclusive) of the last block reserved. Before an id of a new
//! block is handed out, the file is replaced atomically (write, fsync, rename, fsync
//! the directory). A restart starts at the recorded end: the unused rest of the old
//! block is skipped, which costs nothing (ids are 63-bit).

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tokio::sync::{watch, Mutex};
use weir_metadata::lifecycle::BrokerStatus;
use weir_metadata::Controller;
use weir_types::NodeId;

/// The file's name in the data directory.
pub const PRODUCER_ID_BLOCK_FILE: &str = "producer-id-block";

/// Ids reserved per file write (Kafka's `PRODUCER_ID_BLOCK_SIZE`).
const BLOCK_SIZE: i64 = 1000;

/// A reserved range of ids, `[next, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerIdBlock {
    /// The next id to hand out.
    pub next: i64,
    /// One past the last id of the block (what the file records).
    pub end: i64,
}

/// Where new blocks come from.
#[derive(Debug)]
enum BlockSource {
    /// The single node's block file.
    File(PathBuf),
    /// The cluster's controller, asked as this broker in its current epoch.
    Controller {
        controller: Controller,
        node: NodeId,
        status: watch::Receiver<BrokerStatus>,
    },
}

/// The allocator; see the module docs. Shared by all connections.
#[derive(Debug)]
pub struct ProducerIds {
    /// Where blocks come from.
    source: BlockSource,
    /// The current block. A tokio mutex: reserving a block holds it across the
    /// fsync, so two producers at a block boundary cannot both reserve.
    block: Mutex<ProducerIdBlock>,
}

impl ProducerIds {
    /// Reads the block file in `data_dir` (a new directory starts at id 0). Blocking.
    /// A file that does not parse is an error rather than a restart from 0, which
    /// could hand out ids already in use.
    pub fn open(data_dir: &Path) -> io::Result<ProducerIds> {
        let path = data_dir.join(PRODUCER_ID_BLOCK_FILE);
        let end = match fs::read_to_string(&path) {
            Ok(text) => text
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "{} does not hold a producer id ({:?}); restore it or remove it if no \
                         idempotent producer ever wrote to this broker",
                            path.display(),
                            text.trim()
                        ),
                    )
                })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        Ok(ProducerIds {
            source: BlockSource::File(path),
            block: Mutex::new(ProducerIdBlock { next: end, end }),
        })
    }

    /// An allocator of a broker in a cluster: blocks come from `controller`, asked
    /// as `node` in the broker epoch `status` reports.
    pub fn from_controller(
        controller: Controller,
        node: NodeId,
        status: watch::Receiver<BrokerStatus>,
    ) -> ProducerIds {
        ProducerIds {
            source: BlockSource::Controller {
                controller,
                node,
                status,
            },
            block: Mutex::new(ProducerIdBlock { next: 0, end: 0 }),
        }
    }

    /// The next id, reserving (durably) a new block when the current one is used up.
    pub async fn allocate(&self) -> io::Result<i64> {
        let mut block = self.block.lock().await;
        if block.next >= block.end {
            *block = self.next_block(block.end).await?;
        }
        let id = block.next;
        block.next += 1;
        Ok(id)
    }

    /// Reserves the block after one ending at `end`.
    async fn next_block(&self, end: i64) -> io::Result<ProducerIdBlock> {
        match &self.source {
            BlockSource::File(path) => {
                let end = end
                    .checked_add(BLOCK_SIZE)
                    .ok_or_else(|| io::Error::other("producer ids are exhausted"))?;
                let path = path.clone();
                tokio::task::spawn_blocking(move || write_end(&path, end))
                    .await
                    .map_err(io::Error::other)??;
                Ok(ProducerIdBlock {
                    next: end - BLOCK_SIZE,
                    end,
                })
            }
            BlockSource::Controller {
                controller,
                node,
                status,
            } => {
                let epoch = status.borrow().broker_epoch;
                let block = controller
                    .allocate_producer_ids(*node, epoch)
                    .await
                    .map_err(|e| {
                        io::Error::other(format!(
                            "the controller gave no producer id block: {:?} {}",
                            e.code,
                            e.message.unwrap_or_default()
                        ))
                    })?;
                let end = block
                    .first_id
                    .checked_add(i64::from(block.size))
                    .filter(|end| *end > block.first_id)
                    .ok_or_else(|| io::Error::other("the controller gave an empty id block"))?;
                Ok(ProducerIdBlock {
                    next: block.first_id,
                    end,
                })
            }
        }
    }

    /// Whether `id` was handed out (now or before a restart): by this broker on a
    /// single node, by any broker of the cluster otherwise (below the metadata's
    /// next producer id).
    pub async fn was_allocated(&self, id: i64) -> bool {
        if id < 0 {
            return false;
        }
        match &self.source {
            BlockSource::File(_) => id < self.block.lock().await.next,
            BlockSource::Controller { controller, .. } => {
                id < controller.image().next_producer_id()
            }
        }
    }

    /// The current block (tests, metrics).
    pub async fn block(&self) -> ProducerIdBlock {
        *self.block.lock().await
    }
}

/// Replaces the block file with `end`, durably.
fn write_end(path: &Path, end: i64) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut file = fs::File::create(&tmp)?;
        writeln!(file, "{end}")?;
        file.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ids_never_repeat_across_reopen() {
        let dir = tempfile::tempdir().expect("temp dir");
        let ids = ProducerIds::open(dir.path()).expect("open");
        let first: Vec<i64> = {
            let mut v = Vec::new();
            for _ in 0..3 {
                v.push(ids.allocate().await.expect("allocate"));
            }
            v
        };
        assert_eq!(first, vec![0, 1, 2]);
        assert!(ids.was_allocated(2).await && !ids.was_allocated(3).await);
        let text = fs::read_to_string(dir.path().join(PRODUCER_ID_BLOCK_FILE)).expect("file");
        assert_eq!(text.trim(), "1000");
        drop(ids);
        let ids = ProducerIds::open(dir.path()).expect("reopen");
        assert_eq!(ids.allocate().await.expect("allocate"), 1000);
        assert!(
            ids.was_allocated(2).await,
            "ids of the old block count as issued"
        );
    }

    #[tokio::test]
    async fn a_new_block_is_reserved_when_one_runs_out() {
        let dir = tempfile::tempdir().expect("temp dir");
        let ids = ProducerIds::open(dir.path()).expect("open");
        for expected in 0..=BLOCK_SIZE {
            assert_eq!(ids.allocate().await.expect("allocate"), expected);
        }
        assert_eq!(
            ids.block().await,
            ProducerIdBlock {
                next: BLOCK_SIZE + 1,
                end: 2 * BLOCK_SIZE
            }
        );
    }

    #[test]
    fn a_corrupt_file_refuses_to_start() {
        let dir = tempfile::tempdir().expect("temp dir");
        fs::write(dir.path().join(PRODUCER_ID_BLOCK_FILE), "twelve\n").expect("write");
        let error = ProducerIds::open(dir.path()).expect_err("must refuse");
        assert!(
            error.to_string().contains("does not hold a producer id"),
            "{error}"
        );
    }
}
