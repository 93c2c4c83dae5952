//! Small state files beside the Raft log: the vote, the purge point, the commit
//! point.
//!
//! Each file is `magic (4) | crc32c of the body (4) | body`, the body a postcard
//! value. A write goes to `<name>.tmp`, is (optionally) fsynced, and renamed over the
//! file, then the directory is fsynced: a crash leaves the old file or the new one,
//! never a mix (weir-log removes leftover `.tmp` files when it opens the directory).
//! A file that fails its checks is reported, never half-read.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::QuorumError;

/// The first bytes of every state file.
const MAGIC: [u8; 4] = *b"WQS1";

/// The largest state file read (they hold a few ids).
const MAX_LEN: u64 = 64 * 1024;

/// Writes `value` to `dir/name` atomically; with `durable`, fsynced before and after
/// the rename, so the new value survives a crash once this returns.
pub(crate) fn write<T: Serialize>(
    dir: &Path,
    name: &str,
    value: &T,
    durable: bool,
) -> Result<(), QuorumError> {
    let path = dir.join(name);
    let tmp: PathBuf = dir.join(format!("{name}.tmp"));
    let body = postcard::to_allocvec(value)
        .map_err(|e| QuorumError::corrupt(&path, format!("encode: {e}")))?;
    let mut bytes = Vec::with_capacity(8 + body.len());
    bytes.extend_from_slice(&MAGIC);
    bytes.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
    bytes.extend_from_slice(&body);
    let mut f = File::create(&tmp).map_err(|e| QuorumError::io("create", &tmp, e))?;
    f.write_all(&bytes)
        .and_then(|()| if durable { f.sync_all() } else { Ok(()) })
        .map_err(|e| QuorumError::io("write", &tmp, e))?;
    drop(f);
    fs::rename(&tmp, &path).map_err(|e| QuorumError::io("rename", &path, e))?;
    if durable {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Reads `dir/name`; `None` if it does not exist.
pub(crate) fn read<T: DeserializeOwned>(dir: &Path, name: &str) -> Result<Option<T>, QuorumError> {
    let path = dir.join(name);
    let len = match fs::metadata(&path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(QuorumError::io("stat", &path, e)),
    };
    if len > MAX_LEN {
        return Err(QuorumError::corrupt(
            &path,
            format!("{len} bytes is too long"),
        ));
    }
    let bytes = fs::read(&path).map_err(|e| QuorumError::io("read", &path, e))?;
    decode(&bytes)
        .map(Some)
        .map_err(|reason| QuorumError::corrupt(&path, reason))
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    if bytes.len() < 8 || bytes[..4] != MAGIC {
        return Err("not a quorum state file".into());
    }
    let crc = u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    let body = &bytes[8..];
    if crc32c::crc32c(body) != crc {
        return Err("checksum mismatch".into());
    }
    postcard::from_bytes(body).map_err(|e| format!("decode: {e}"))
}

/// fsyncs a directory, so a rename or a new file in it is durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), QuorumError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| QuorumError::io("fsync", dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_value_reads_back_and_damage_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read::<u64>(dir.path(), "v").unwrap(), None);
        write(dir.path(), "v", &(7u64, Some(3u32)), true).unwrap();
        assert_eq!(
            read::<(u64, Option<u32>)>(dir.path(), "v").unwrap(),
            Some((7, Some(3)))
        );
        assert!(!dir.path().join("v.tmp").exists());
        let path = dir.path().join("v");
        let mut bytes = fs::read(&path).unwrap();
        *bytes.last_mut().unwrap() ^= 1;
        fs::write(&path, &bytes).unwrap();
        assert!(matches!(
            read::<(u64, Option<u32>)>(dir.path(), "v"),
            Err(QuorumError::Corrupt { .. })
        ));
        fs::write(&path, b"xx").unwrap();
        assert!(read::<u64>(dir.path(), "v").is_err());
    }
}
