//! Ack store replay (what a restart reads from `acks.jsonl`): any bytes are
//! read without a panic, and the compacted text replays to the same acks
//! with nothing skipped (so compaction never loses or corrupts an ack).
#![no_main]

use libfuzzer_sys::fuzz_target;
use perf_sentinel::acks::{Limits, replay_jsonl};
use time::macros::datetime;

fuzz_target!(|data: &[u8]| {
    // Small limits, so the fuzzer reaches them.
    let limits = Limits {
        max_active: 8,
        max_line_bytes: 1024,
        max_file_bytes: 1 << 20,
    };
    let now = datetime!(2026-03-01 12:00 UTC);
    let first = replay_jsonl(data, &limits, now).expect("replay from memory cannot fail");
    let again = replay_jsonl(&first.compacted, &limits, now).expect("replay of compacted text");
    assert_eq!(again.report.skipped, [], "compacted text has no bad line");
    assert_eq!(again.acks, first.acks, "compaction keeps every active ack");
    assert_eq!(again.compacted, first.compacted, "compaction is stable");
});
