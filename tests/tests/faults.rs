//! Faults, each through the real binary: SIGTERM in the middle of load,
//! SIGKILL while acknowledgments are being written, the ack store on a full
//! or read-only disk, a thousand idle connections with slow-loris bodies,
//! and hostile strings and span trees.
//!
//! A plugin that panics on every trace is covered by `plugins.rs`
//! (`a_panicking_plugin_is_quarantined_and_the_daemon_keeps_serving`);
//! a stalled header or body by `tls_timeouts.rs`; 64 KiB statements and
//! terminal escapes in the API and stdout by `bad_input.rs`.

mod common;

#[path = "faults/ack_crash.rs"]
mod ack_crash;
#[path = "faults/connections.rs"]
mod connections;
#[path = "faults/disk.rs"]
mod disk;
#[path = "faults/hostile.rs"]
mod hostile;
#[path = "faults/shutdown.rs"]
mod shutdown;
