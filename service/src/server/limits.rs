//! How many connections fit in the process's open-file limit.
//!
//! Every connection is a file descriptor; when the limit is reached `accept` fails and so does
//! everything else that opens a file (the record store, artifact fetches, the probes). The
//! connection limit therefore stays below the open-file limit with room for the rest.

/// Descriptors kept for everything but client connections: the listeners, the runtime, the
/// record store (redb files or the PostgreSQL pool), artifact and JWKS fetches, logs.
pub const FILE_RESERVE: u64 = 256;

/// Raises the soft open-file limit to the hard limit, as Go's runtime does at start (the soft
/// limit of 1024 that many systems set is a leftover of `select(2)`); returns the soft limit then
/// in force, or `None` when it cannot be read.
#[allow(clippy::unnecessary_cast, reason = "rlim_t is u64 on Linux but not on every target")]
pub fn raise_open_file_limit() -> Option<u64> {
    // SAFETY: getrlimit/setrlimit only read and write the struct passed by pointer.
    unsafe {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return None;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit.rlim_cur = limit.rlim_max;
            }
        }
        Some(limit.rlim_cur as u64)
    }
}

/// The main port's connection limit for an open-file limit of `open_files`, leaving
/// [`FILE_RESERVE`] and the management port's connections free. A value set explicitly that does
/// not fit is an error; the default is lowered to fit.
pub fn fit_connection_limit(
    wanted: usize,
    explicit: bool,
    management_connections: usize,
    open_files: Option<u64>,
) -> Result<usize, String> {
    let Some(open_files) = open_files else {
        return Ok(wanted);
    };
    let available = open_files.saturating_sub(FILE_RESERVE + management_connections as u64) as usize;
    if wanted <= available {
        Ok(wanted)
    } else if explicit {
        Err(format!(
            "is above what the open-file limit allows: {open_files} descriptors (ulimit -n) leave {available} \
             for connections after {FILE_RESERVE} for the rest of the service and {management_connections} for the \
             management port"
        ))
    } else if available == 0 {
        Err(format!(
            "cannot be met: the open-file limit of {open_files} descriptors (ulimit -n) leaves none for connections"
        ))
    } else {
        Ok(available)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_lowered_to_fit_and_an_explicit_value_must_fit() {
        assert_eq!(fit_connection_limit(4096, false, 16, Some(1_048_576)), Ok(4096));
        assert_eq!(fit_connection_limit(4096, false, 16, Some(1024)), Ok(1024 - 256 - 16));
        assert!(
            fit_connection_limit(4096, true, 16, Some(1024))
                .unwrap_err()
                .contains("752 for connections")
        );
        assert_eq!(fit_connection_limit(100, true, 0, Some(1024)), Ok(100));
        assert!(fit_connection_limit(10, false, 16, Some(200)).is_err());
        assert_eq!(fit_connection_limit(10, true, 16, None), Ok(10));
    }

    #[test]
    #[allow(clippy::unnecessary_cast, reason = "rlim_t is u64 on Linux but not on every target")]
    fn the_soft_limit_is_raised_to_the_hard_limit() {
        let soft = raise_open_file_limit().expect("getrlimit works on Linux");
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: as above.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }, 0);
        assert_eq!(soft, limit.rlim_cur as u64);
        assert_eq!(limit.rlim_cur, limit.rlim_max);
    }
}
