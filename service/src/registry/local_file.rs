//! The local files the registry reads (`REGISTRY_CATALOG_FILE` and, with
//! `REGISTRY_ALLOW_LOCAL_ARTIFACTS`, the artifacts beside it): only regular files, at most
//! `REGISTRY_ARTIFACT_MAX_BYTES`, within `REGISTRY_FETCH_TIMEOUT_MS`, the limits an HTTP fetch has.
//! A FIFO would block the open (or the read) until a writer comes, a device may never end
//! (`/dev/zero`), and a refresh would wait with them.

use std::fs::{File, FileType, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;

/// How much and how long a local read may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalFileLimits {
    pub max_bytes: u64,
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocalFileError {
    #[error("{0}")]
    Io(String),
    #[error("is {kind}, not a regular file; only regular files are read")]
    NotRegular { kind: &'static str },
    #[error("larger than the {limit} byte limit (REGISTRY_ARTIFACT_MAX_BYTES)")]
    TooLarge { limit: u64 },
    #[error("not read within {millis} ms (REGISTRY_FETCH_TIMEOUT_MS)")]
    Timeout { millis: u64 },
}

/// Reads `path` within `limits`, on a blocking thread. A read that outlives the time limit is
/// abandoned (its thread finishes, or stays blocked, on its own).
pub async fn read(path: &Path, limits: LocalFileLimits) -> Result<Bytes, LocalFileError> {
    let owned = path.to_path_buf();
    let reading = tokio::task::spawn_blocking(move || read_regular_file(&owned, limits.max_bytes));
    match tokio::time::timeout(limits.timeout, reading).await {
        Ok(Ok(result)) => result,
        Ok(Err(join)) => Err(LocalFileError::Io(format!("the reading thread failed: {join}"))),
        Err(_) => Err(LocalFileError::Timeout {
            millis: limits.timeout.as_millis() as u64,
        }),
    }
}

/// Reads a regular file of at most `max_bytes`, refusing anything else before reading a byte.
pub fn read_regular_file(path: &Path, max_bytes: u64) -> Result<Bytes, LocalFileError> {
    let io = |e: std::io::Error| LocalFileError::Io(e.to_string());
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer. Regular files
    // ignore it.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(io)?;
    // The type of what was opened, not of what the path names by now.
    let metadata = file.metadata().map_err(io)?;
    if !metadata.is_file() {
        return Err(LocalFileError::NotRegular {
            kind: describe(metadata.file_type()),
        });
    }
    if metadata.len() > max_bytes {
        return Err(LocalFileError::TooLarge { limit: max_bytes });
    }
    read_capped(file, metadata.len(), max_bytes)
}

/// Never holds more than `max_bytes + 1`, however much the file grew since it was measured.
fn read_capped(file: File, expected: u64, max_bytes: u64) -> Result<Bytes, LocalFileError> {
    let mut bytes = Vec::with_capacity(expected as usize);
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| LocalFileError::Io(e.to_string()))?;
    if bytes.len() as u64 > max_bytes {
        return Err(LocalFileError::TooLarge { limit: max_bytes });
    }
    Ok(Bytes::from(bytes))
}

fn describe(file_type: FileType) -> &'static str {
    if file_type.is_dir() {
        "a directory"
    } else if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_socket() {
        "a socket"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else {
        "a special file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mkfifo(path: &Path) {
        let c_path = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path; mkfifo only creates a file system entry.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0, "mkfifo");
    }

    #[test]
    fn regular_files_within_the_limit_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        std::fs::write(&path, b"[1,2]").unwrap();
        assert_eq!(read_regular_file(&path, 5).unwrap(), Bytes::from_static(b"[1,2]"));
        assert_eq!(read_regular_file(&path, 4), Err(LocalFileError::TooLarge { limit: 4 }));
    }

    #[test]
    fn fifos_devices_and_directories_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        mkfifo(&fifo);
        assert_eq!(
            read_regular_file(&fifo, 1024),
            Err(LocalFileError::NotRegular { kind: "a FIFO" })
        );
        assert_eq!(
            read_regular_file(Path::new("/dev/zero"), 1024),
            Err(LocalFileError::NotRegular {
                kind: "a character device"
            })
        );
        assert_eq!(
            read_regular_file(dir.path(), 1024),
            Err(LocalFileError::NotRegular { kind: "a directory" })
        );
    }

    #[test]
    fn a_growing_file_is_never_held_beyond_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("grows");
        std::fs::write(&path, vec![b'x'; 100]).unwrap();
        // Measured at 10 bytes, 100 there when read.
        let file = File::open(&path).unwrap();
        assert_eq!(read_capped(file, 10, 50), Err(LocalFileError::TooLarge { limit: 50 }));
    }
}
