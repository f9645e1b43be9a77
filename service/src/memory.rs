//! Heap settings of the service process. Most of the idle resident size of a glibc process with
//! many threads is free memory kept by glibc's per-thread arenas (up to 8 per core): parsing a
//! model's artifacts on parallel threads leaves megabytes free in each. The evidence (glibc
//! defaults, `M_ARENA_MAX`, trimming, jemalloc, mimalloc) is in docs/validation.md, "Memory".

/// Limits glibc to two malloc arenas, unless `MALLOC_ARENA_MAX` is set in the environment (glibc
/// then applies that itself, which is how the other settings are measured). Call before any
/// thread is started.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn limit_malloc_arenas() {
    /// Two arenas: the reactor and validation threads rarely allocate at the same instant on
    /// the two cores this runs on, and validation throughput measured the same (docs).
    const ARENAS: libc::c_int = 2;
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only changes allocator parameters; called before other threads exist.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, ARENAS);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn limit_malloc_arenas() {}

/// Hands memory that glibc keeps free back to the system: after a compile (its parse peak is
/// several times what the validators keep) and after a refresh (the fetched artifact buffers of
/// unchanged models are dropped).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn release_freed_memory() {
    // SAFETY: `malloc_trim` only releases free memory of glibc's heaps; it touches no live
    // allocation and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release_freed_memory() {}
