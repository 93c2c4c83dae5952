//! `meta.properties`: the identity of a data directory (Kafka's format, version 1).
//!
//! ```text
//! version=1
//! cluster.id=<22-character base64 UUID>
//! node.id=<node id>
//! ```
//!
//! The cluster id is not a metadata record in KRaft: the directory is "formatted"
//! with it before the first start. The single-node mode formats an empty data
//! directory itself on first start; after that, a file that is missing while the
//! metadata log has records, or that names another node, stops startup rather than
//! silently joining the data to a new cluster.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use weir_types::NodeId;

use crate::error::{MetadataError, Result};
use crate::uuid::{to_base64, UuidGenerator};

/// The file's name inside the data directory.
pub const META_PROPERTIES_FILE: &str = "meta.properties";

/// The largest `meta.properties` read (it is a few lines).
const MAX_LEN: u64 = 64 * 1024;

/// The identity of a data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaProperties {
    /// The cluster the directory belongs to.
    pub cluster_id: String,
    /// The node the directory belongs to.
    pub node_id: NodeId,
}

impl MetaProperties {
    /// Reads `<data_dir>/meta.properties`; `None` if the file does not exist.
    pub fn load(data_dir: &Path) -> Result<Option<MetaProperties>> {
        let path = data_dir.join(META_PROPERTIES_FILE);
        let bad = |reason: String| MetadataError::MetaProperties {
            path: path.clone(),
            reason,
        };
        let len = match fs::metadata(&path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(MetadataError::io("stat", &path, e)),
        };
        if len > MAX_LEN {
            return Err(bad(format!("{len} bytes is too long")));
        }
        let text = fs::read_to_string(&path).map_err(|e| MetadataError::io("read", &path, e))?;
        let (mut version, mut cluster_id, mut node_id) = (None, None, None);
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            let Some((k, v)) = line.split_once('=') else {
                return Err(bad(format!("line {line:?} is not key=value")));
            };
            match k.trim() {
                "version" => version = Some(v.trim().to_string()),
                "cluster.id" => cluster_id = Some(v.trim().to_string()),
                "node.id" => node_id = Some(v.trim().to_string()),
                _ => {} // directory.id and future keys
            }
        }
        if version.as_deref() != Some("1") {
            return Err(bad(format!("version {version:?}, expected 1")));
        }
        let cluster_id = cluster_id
            .filter(|c| !c.is_empty())
            .ok_or_else(|| bad("no cluster.id".into()))?;
        let node_id = node_id
            .and_then(|n| n.parse::<i32>().ok())
            .filter(|n| *n >= 0)
            .ok_or_else(|| bad("no valid node.id".into()))?;
        Ok(Some(MetaProperties {
            cluster_id,
            node_id: NodeId(node_id),
        }))
    }

    /// Writes `<data_dir>/meta.properties` atomically and durably (temporary file,
    /// fsync, rename, fsync of the directory).
    pub fn write(&self, data_dir: &Path) -> Result<()> {
        let path = data_dir.join(META_PROPERTIES_FILE);
        let tmp: PathBuf = data_dir.join(format!("{META_PROPERTIES_FILE}.tmp"));
        let text = format!(
            "#\n#Written by Weir\nversion=1\ncluster.id={}\nnode.id={}\n",
            self.cluster_id, self.node_id
        );
        let mut f = File::create(&tmp).map_err(|e| MetadataError::io("create", &tmp, e))?;
        f.write_all(text.as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(|e| MetadataError::io("write", &tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| MetadataError::io("rename", &path, e))?;
        File::open(data_dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| MetadataError::io("fsync", data_dir, e))
    }

    /// The directory's identity for node `node_id`: read from the file, or — for a
    /// directory whose metadata log is empty — formatted now with `cluster_id`, or
    /// a new random one without. A directory of another node, or of another
    /// cluster than a given `cluster_id`, is refused.
    pub fn load_or_format(
        data_dir: &Path,
        node_id: NodeId,
        cluster_id: Option<&str>,
        metadata_log_is_empty: bool,
        ids: &mut UuidGenerator,
    ) -> Result<MetaProperties> {
        let path = data_dir.join(META_PROPERTIES_FILE);
        match MetaProperties::load(data_dir)? {
            Some(p) if cluster_id.is_some_and(|c| c != p.cluster_id) => {
                Err(MetadataError::MetaProperties {
                    path,
                    reason: format!(
                        "the directory belongs to cluster {}, not to cluster.id {}: point \
                         the node at its own data directory, or fix cluster.id",
                        p.cluster_id,
                        cluster_id.unwrap_or_default()
                    ),
                })
            }
            Some(p) if p.node_id == node_id => Ok(p),
            Some(p) => Err(MetadataError::MetaProperties {
                path,
                reason: format!(
                    "the directory belongs to node {}, not to node {node_id}",
                    p.node_id
                ),
            }),
            None if !metadata_log_is_empty => Err(MetadataError::MetaProperties {
                path,
                reason: "missing, but the metadata log has records: restore the file \
                         (cluster.id and node.id) rather than start a new cluster"
                    .into(),
            }),
            None => {
                let p = MetaProperties {
                    cluster_id: cluster_id.map_or_else(|| to_base64(ids.next_uuid()), String::from),
                    node_id,
                };
                p.write(data_dir)?;
                tracing::info!(cluster_id = %p.cluster_id, "formatted a new data directory");
                Ok(p)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_once_then_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut ids = UuidGenerator::seeded(9);
        let a =
            MetaProperties::load_or_format(dir.path(), NodeId(1), None, true, &mut ids).unwrap();
        assert_eq!(a.cluster_id.len(), 22);
        let b =
            MetaProperties::load_or_format(dir.path(), NodeId(1), None, false, &mut ids).unwrap();
        assert_eq!(a, b);
        assert!(
            MetaProperties::load_or_format(dir.path(), NodeId(2), None, false, &mut ids).is_err()
        );
    }

    #[test]
    fn a_given_cluster_id_formats_the_directory_and_must_match_after() {
        let dir = tempfile::tempdir().unwrap();
        let mut ids = UuidGenerator::seeded(9);
        let id = "MkU3OEVBNTcwNTJENDM2Qk";
        let a = MetaProperties::load_or_format(dir.path(), NodeId(1), Some(id), true, &mut ids)
            .unwrap();
        assert_eq!(a.cluster_id, id);
        let b = MetaProperties::load_or_format(dir.path(), NodeId(1), Some(id), false, &mut ids)
            .unwrap();
        assert_eq!(a, b);
        let other = "AAAAAAAAAAAAAAAAAAAAAQ";
        let err =
            MetaProperties::load_or_format(dir.path(), NodeId(1), Some(other), false, &mut ids)
                .unwrap_err()
                .to_string();
        assert!(err.contains(id) && err.contains(other), "{err}");
    }

    #[test]
    fn missing_file_with_a_non_empty_log_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut ids = UuidGenerator::seeded(9);
        let err = MetaProperties::load_or_format(dir.path(), NodeId(1), None, false, &mut ids);
        assert!(matches!(err, Err(MetadataError::MetaProperties { .. })));
    }

    #[test]
    fn reads_kafka_written_files_and_rejects_bad_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(META_PROPERTIES_FILE);
        fs::write(
            &path,
            "#\n#Thu Jan 01 00:00:00 UTC 2026\nnode.id=3\ndirectory.id=abc\nversion=1\ncluster.id=MkU3OEVBNTcwNTJENDM2Qk\n",
        )
        .unwrap();
        let p = MetaProperties::load(dir.path()).unwrap().unwrap();
        assert_eq!(p.node_id, NodeId(3));
        assert_eq!(p.cluster_id, "MkU3OEVBNTcwNTJENDM2Qk");
        for bad in [
            "version=0\ncluster.id=x\nnode.id=1\n",
            "version=1\nnode.id=1\n",
            "garbage\n",
        ] {
            fs::write(&path, bad).unwrap();
            assert!(MetaProperties::load(dir.path()).is_err(), "{bad:?}");
        }
    }
}
