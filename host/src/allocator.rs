//! The global allocator (mimalloc) and the one setting the daemon changes.
//!
//! mimalloc returns freed pages to the OS only after a delay (1 s), and
//! only when the thread that owns them allocates again. Shard and receive
//! threads that fall idle after a burst never do, so a daemon that took
//! 150 MB under load kept it. With the delay at 0 a page goes back as soon
//! as it is empty: the same load leaves about half as much resident, the
//! rest being findings and traces the daemon keeps on purpose.
//!
//! Batch commands (`analyze`, `calibrate`) keep mimalloc's default: they
//! live for seconds, their peak is what counts, and purging each page as
//! it empties cost `analyze` about 0.8 s of system time per million spans
//! (page faults and `madvise` calls on pages it reuses right after).

#![allow(unsafe_code)]

use libmimalloc_sys as mi;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in the vendored mimalloc v3 (its header's
/// `mi_option_e`); the unit test checks it names the option whose default
/// is 1000 ms.
const PURGE_DELAY: mi::mi_option_t = 15;

/// What the process is, for the allocator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifetime {
    /// The daemon and its helpers: long-lived, idle memory matters.
    Daemon,
    /// A batch command: short-lived, throughput and peak matter.
    Batch,
}

/// Applies the allocator settings. Call in `main` before any thread
/// exists. `MIMALLOC_PURGE_DELAY` in the environment wins: purging costs
/// page faults and TLB flushes under load, a trade an operator may choose.
pub fn configure(lifetime: Lifetime) {
    if lifetime == Lifetime::Batch || std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: mi_option_set is not thread-safe; this runs at the top of
    // `main` before any thread is spawned, and nothing else sets options.
    unsafe { mi::mi_option_set(PURGE_DELAY, 0) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_purge_delay_index_is_mimallocs_and_configure_sets_it() {
        // SAFETY: reads an option; the test harness sets none concurrently.
        let before = unsafe { mi::mi_option_get(PURGE_DELAY) };
        assert_eq!(
            before, 1000,
            "index 15 is not purge_delay (default 1000 ms)"
        );
        configure(Lifetime::Batch);
        // SAFETY: as above.
        assert_eq!(unsafe { mi::mi_option_get(PURGE_DELAY) }, 1000);
        configure(Lifetime::Daemon);
        // SAFETY: as above.
        assert_eq!(unsafe { mi::mi_option_get(PURGE_DELAY) }, 0);
    }
}
