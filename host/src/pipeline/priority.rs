//! Analysis threads yield the CPU to the receivers. Analysis is queued work
//! (admission bounds it); a receiving task is an exporter waiting for its
//! reply. At the same nice value the kernel shares the cores evenly, and
//! a request waits behind the shard threads; five steps lower, export
//! latency at half of capacity fell by a fifth (p99 10.3 → 8.4 ms over
//! gRPC, 8.1 → 6.4 ms over HTTP) while capacity stayed the same
//! (docs/PERFORMANCE.md).

/// How many nice steps below the daemon's own the analysis threads run.
pub const STEPS: i32 = 5;

/// Lowers the calling thread's priority by [`STEPS`] (Linux nice values
/// are per thread), at most to 19. Best effort: on failure the thread keeps
/// its priority, which only costs latency.
pub fn lower_current_thread() {
    use rustix::process::{getpriority_process, setpriority_process};
    let result =
        getpriority_process(None).and_then(|now| setpriority_process(None, (now + STEPS).min(19)));
    if let Err(e) = result {
        tracing::debug!(error = %e, "could not lower an analysis thread's priority");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_calling_thread_is_lowered() {
        let before = rustix::process::getpriority_process(None).unwrap();
        let inside = std::thread::spawn(|| {
            lower_current_thread();
            rustix::process::getpriority_process(None).unwrap()
        })
        .join()
        .unwrap();
        assert_eq!(inside, (before + STEPS).min(19));
        assert_eq!(rustix::process::getpriority_process(None).unwrap(), before);
    }
}
