//! Fatal errors visible to Kubernetes: besides stderr, the one-line error the service exits with
//! is written to the container's termination-message file, which the kubelet copies into the
//! pod's status (`lastState.terminated.message`) and the operator repeats in the HexCoreService's
//! conditions. Without it a crash-looping pod says only "exit code 2".

use std::path::{Path, PathBuf};

/// Overrides where the message is written (tests, or a runtime with another path).
pub const PATH_VARIABLE: &str = "HEX_TERMINATION_MESSAGE_PATH";
/// Where the kubelet mounts the termination-message file by default.
pub const DEFAULT_PATH: &str = "/dev/termination-log";
/// The kubelet keeps at most 4096 bytes of a termination message.
const MAX_BYTES: usize = 4096;

/// The file to write: `HEX_TERMINATION_MESSAGE_PATH` when set (created if needed), else
/// `/dev/termination-log` when it exists and is writable (it does in a Kubernetes container;
/// outside one nothing is written).
fn target(variable: Option<String>) -> Option<PathBuf> {
    match variable.filter(|v| !v.trim().is_empty()) {
        Some(path) => Some(PathBuf::from(path)),
        None => {
            let default = Path::new(DEFAULT_PATH);
            let writable = std::fs::metadata(default).is_ok_and(|m| !m.permissions().readonly());
            writable.then(|| default.to_path_buf())
        }
    }
}

/// `message` cut to the kubelet's limit on a character boundary, with a final newline.
fn bounded(message: &str) -> String {
    let mut end = message.len().min(MAX_BYTES - 1);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}\n", &message[..end])
}

/// Writes `message` to the termination-message file, if there is one. Best effort: the message
/// is on stderr too, and a failure here must not hide the original error.
pub fn write(message: &str) {
    if let Some(path) = target(std::env::var(PATH_VARIABLE).ok()) {
        let _ = std::fs::write(path, bounded(message));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_variable_names_the_file_and_messages_are_bounded() {
        assert_eq!(target(Some("/tmp/x".into())), Some(PathBuf::from("/tmp/x")));
        assert_eq!(bounded("bad"), "bad\n");
        let long = "é".repeat(3000);
        let cut = bounded(&long);
        assert!(cut.len() <= MAX_BYTES);
        assert!(cut.ends_with('\n'));
    }
}
