//! Tests of the runtime ack store against real files.

use std::os::unix::fs::PermissionsExt;

use time::Duration;
use time::macros::datetime;

use super::*;
use crate::acks::testutil::{TempDir, sig, write_file};

const NOW: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);

fn open(path: &Path) -> AckStore {
    AckStore::open_with_limits(path, false, Limits::default(), NOW).unwrap()
}

fn entry(n: u32, expires_at: Option<OffsetDateTime>) -> Ack {
    Ack {
        signature: sig(n),
        by: format!("user{n}"),
        reason: format!("reason {n}"),
        at: NOW,
        expires_at,
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn acks_survive_a_reopen_and_the_file_is_compacted() {
    let dir = TempDir::new("roundtrip");
    let path = dir.join("acks.jsonl");
    let mut store = open(&path);
    let expiry = Some(NOW + Duration::days(30));
    store.ack(entry(3, None)).unwrap();
    store.ack(entry(1, expiry)).unwrap();
    store.ack(entry(2, None)).unwrap();
    store.unack(&sig(2), "user9", NOW).unwrap();
    assert_eq!(lines(&path).len(), 4, "one line per write");
    let before = store.active(NOW);
    drop(store);

    let store = open(&path);
    assert_eq!(store.active(NOW), before);
    assert_eq!(store.active(NOW), [entry(1, expiry), entry(3, None)]);
    assert_eq!(store.replay_report().lines, 4);
    assert_eq!(store.replay_report().active, 2);
    assert!(store.replay_report().skipped.is_empty());
    let compacted = lines(&path);
    assert_eq!(compacted.len(), 2, "{compacted:?}");
    assert_eq!(
        compacted[0],
        format!(
            r#"{{"action":"ack","signature":"{}","by":"user1","reason":"reason 1","at":"2026-03-01T12:00:00Z","expires_at":"2026-03-31T12:00:00Z"}}"#,
            sig(1)
        )
    );
    assert!(
        compacted[1].ends_with(r#""expires_at":null}"#),
        "{}",
        compacted[1]
    );
    assert!(!dir.join("acks.jsonl.tmp").exists());
}

#[test]
fn torn_and_malformed_lines_are_skipped_and_reported() {
    let dir = TempDir::new("torn");
    let path = dir.join("acks.jsonl");
    let good = |n: u32| ack_line(&entry(n, None)).unwrap();
    let unack = format!(
        r#"{{"action":"unack","signature":"{}","by":"x","at":"2026-03-01T12:00:00Z","reason":null,"expires_at":null}}"#,
        sig(4)
    );
    let text = format!(
        "{}\nnot json\n{}\n\n{}\n{}\n{}\n{}",
        good(1),
        good(2),
        good(4),
        unack,
        r#"{"action":"ack","signature":"bad","by":"x","reason":"","at":"2026-03-01T12:00:00Z"}"#,
        &good(3)[..40],
    );
    write_file(&path, &text, 0o600);
    let mut store = open(&path);
    let report = store.replay_report();
    let skipped: Vec<usize> = report.skipped.iter().map(|s| s.line).collect();
    assert_eq!(skipped, [2, 7, 8], "{report:#?}");
    assert_eq!(report.skipped_total, 3);
    assert!(
        report.skipped[0].reason.contains("invalid JSON"),
        "{report:#?}"
    );
    assert!(
        report.skipped[1]
            .reason
            .contains("malformed finding signature")
    );
    assert!(
        report.skipped[2].reason.contains("no newline"),
        "{report:#?}"
    );
    let active: Vec<String> = store.active(NOW).into_iter().map(|a| a.signature).collect();
    assert_eq!(active, [sig(1), sig(2)]);
    assert_eq!(lines(&path), [good(1), good(2)]);
    // The torn fragment is gone, so the next append starts on a clean line.
    store.ack(entry(5, None)).unwrap();
    drop(store);
    assert_eq!(open(&path).active(NOW).len(), 3);
}

#[test]
fn over_long_lines_are_skipped_without_reading_them_whole() {
    let dir = TempDir::new("long");
    let path = dir.join("acks.jsonl");
    let mut long = entry(1, None);
    long.reason = "r".repeat(100_000);
    let text = format!(
        "{}\n{}\n",
        ack_line(&long).unwrap(),
        ack_line(&entry(2, None)).unwrap()
    );
    write_file(&path, &text, 0o600);
    let store = open(&path);
    assert_eq!(store.replay_report().skipped[0].line, 1);
    assert!(
        store.replay_report().skipped[0]
            .reason
            .contains("longer than 4096")
    );
    assert_eq!(store.active(NOW), [entry(2, None)]);
}

#[test]
fn replay_cleans_hand_edited_text() {
    let dir = TempDir::new("clean");
    let path = dir.join("acks.jsonl");
    let mut e = entry(1, None);
    e.by = "ev\u{202E}il".to_owned();
    write_file(&path, &format!("{}\n", ack_line(&e).unwrap()), 0o600);
    assert_eq!(open(&path).get(&sig(1), NOW).unwrap().by, "evil");
}

#[test]
fn a_symlink_at_the_path_is_refused() {
    let dir = TempDir::new("symlink");
    let target = dir.join("elsewhere.jsonl");
    write_file(&target, "", 0o600);
    let path = dir.join("acks.jsonl");
    std::os::unix::fs::symlink(&target, &path).unwrap();
    let err = AckStore::open_with_limits(&path, true, Limits::default(), NOW).unwrap_err();
    assert!(
        matches!(&err, AckError::Symlink { path: p } if *p == path),
        "{err:?}"
    );
    assert_eq!(err.http_status(), 503);
    assert!(std::fs::symlink_metadata(&path).unwrap().is_symlink());
}

#[test]
fn a_file_others_can_read_is_refused_and_left_alone() {
    let dir = TempDir::new("perms");
    let path = dir.join("acks.jsonl");
    let text = format!("{}\n", ack_line(&entry(1, None)).unwrap());
    write_file(&path, &text, 0o644);
    let err = AckStore::open_with_limits(&path, true, Limits::default(), NOW).unwrap_err();
    assert!(
        matches!(&err, AckError::InsecurePermissions { path: p, mode: 0o644 } if *p == path),
        "{err:?}"
    );
    assert!(err.to_string().contains("0644"), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    assert_eq!(mode(&path), 0o644);
    std::fs::set_permissions(&path, PermissionsExt::from_mode(0o640)).unwrap();
    assert!(AckStore::open_with_limits(&path, true, Limits::default(), NOW).is_err());
    std::fs::set_permissions(&path, PermissionsExt::from_mode(0o400)).unwrap();
    assert!(AckStore::open_with_limits(&path, true, Limits::default(), NOW).is_ok());
}

#[test]
fn a_directory_at_the_path_is_refused() {
    let dir = TempDir::new("notfile");
    std::fs::create_dir(dir.join("acks.jsonl")).unwrap();
    std::fs::set_permissions(dir.join("acks.jsonl"), PermissionsExt::from_mode(0o700)).unwrap();
    let err = AckStore::open_with_limits(&dir.join("acks.jsonl"), true, Limits::default(), NOW);
    assert!(
        matches!(err, Err(AckError::NotRegularFile { .. })),
        "{err:?}"
    );
}

#[test]
fn new_files_are_0600_and_new_directories_0700() {
    let dir = TempDir::new("modes");
    // The default path: every missing directory is created.
    let path = dir.join("data/perf-sentinel/acks.jsonl");
    let mut store = AckStore::open_with_limits(&path, false, Limits::default(), NOW).unwrap();
    store.ack(entry(1, None)).unwrap();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&dir.join("data/perf-sentinel")), 0o700);
    assert_eq!(mode(&dir.join("data")), 0o700);

    // A configured path: only its own directory.
    let path = dir.join("state/acks.jsonl");
    AckStore::open_with_limits(&path, true, Limits::default(), NOW).unwrap();
    assert_eq!(mode(&dir.join("state")), 0o700);
    assert_eq!(mode(&path), 0o600);
    let typo = dir.join("missing/state/acks.jsonl");
    let err = AckStore::open_with_limits(&typo, true, Limits::default(), NOW).unwrap_err();
    assert!(err.to_string().contains("parent does not exist"), "{err}");
    assert!(!dir.join("missing").exists());
    assert!(dir.path().join("state").is_dir());
}

#[test]
fn the_active_ack_limit_is_enforced() {
    let dir = TempDir::new("limit");
    let path = dir.join("acks.jsonl");
    let limits = Limits {
        max_active: 2,
        ..Limits::default()
    };
    let mut store = AckStore::open_with_limits(&path, false, limits, NOW).unwrap();
    store.ack(entry(1, Some(NOW + Duration::hours(1)))).unwrap();
    store.ack(entry(2, None)).unwrap();
    let err = store.ack(entry(3, None)).unwrap_err();
    assert!(
        matches!(err, AckError::LimitReached { limit: 2, .. }),
        "{err:?}"
    );
    assert_eq!(err.http_status(), 507);
    // Replacing an existing ack takes no new room.
    store.ack(entry(2, None)).unwrap();
    // Expired acks free their room.
    let mut later = entry(3, None);
    later.at = NOW + Duration::hours(2);
    store.ack(later).unwrap();
    assert_eq!(store.active(NOW + Duration::hours(2)).len(), 2);
}

#[test]
fn an_oversized_entry_is_refused_and_nothing_changes() {
    let dir = TempDir::new("large");
    let path = dir.join("acks.jsonl");
    let mut store = open(&path);
    let mut big = entry(1, None);
    big.reason = "x".repeat(5000);
    let err = store.ack(big).unwrap_err();
    assert!(
        matches!(err, AckError::EntryTooLarge { limit: 4096, .. }),
        "{err:?}"
    );
    assert_eq!(err.http_status(), 507);
    assert!(store.get(&sig(1), NOW).is_none());
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
}

#[test]
fn a_full_file_is_compacted_before_writes_are_refused() {
    let dir = TempDir::new("full");
    let path = dir.join("acks.jsonl");
    let line_len = ack_line(&entry(1, None)).unwrap().len() as u64 + 1;
    let limits = Limits {
        max_file_bytes: line_len * 3,
        ..Limits::default()
    };
    let mut store = AckStore::open_with_limits(&path, false, limits, NOW).unwrap();
    // Churn on one signature keeps going: compaction reclaims the room.
    for _ in 0..5 {
        store.ack(entry(1, None)).unwrap();
        store.unack(&sig(1), "u", NOW).unwrap();
    }
    assert!(std::fs::metadata(&path).unwrap().len() <= limits.max_file_bytes);
    store.ack(entry(1, None)).unwrap();
    store.ack(entry(2, None)).unwrap();
    store.ack(entry(3, None)).unwrap();
    let err = store.ack(entry(4, None)).unwrap_err();
    assert!(matches!(err, AckError::StoreFull { .. }), "{err:?}");
    assert_eq!(err.http_status(), 507);
    assert!(store.get(&sig(4), NOW).is_none());
    drop(store);
    assert_eq!(open(&path).active(NOW).len(), 3);
}

#[test]
fn expired_acks_stop_applying_and_are_dropped_at_open() {
    let dir = TempDir::new("expiry");
    let path = dir.join("acks.jsonl");
    let mut store = open(&path);
    let end = NOW + Duration::hours(1);
    store.ack(entry(1, Some(end))).unwrap();
    store.ack(entry(2, None)).unwrap();
    assert!(store.get(&sig(1), end - Duration::seconds(1)).is_some());
    assert!(store.get(&sig(1), end).is_none());
    assert_eq!(store.active(end).len(), 1);
    let err = store.unack(&sig(1), "u", end).unwrap_err();
    assert!(matches!(err, AckError::NotFound { .. }), "{err:?}");
    drop(store);

    let store = AckStore::open_with_limits(&path, false, Limits::default(), end).unwrap();
    assert_eq!(store.replay_report().expired, 1);
    assert_eq!(store.active(NOW), [entry(2, None)]);
    assert_eq!(lines(&path).len(), 1);
}

#[test]
fn an_ack_already_expired_is_refused() {
    let dir = TempDir::new("past");
    let mut store = open(&dir.join("acks.jsonl"));
    let err = store.ack(entry(1, Some(NOW))).unwrap_err();
    assert_eq!(err.http_status(), 400);
}

#[test]
fn unack_of_an_unknown_signature_is_not_found() {
    let dir = TempDir::new("unknown");
    let mut store = open(&dir.join("acks.jsonl"));
    let err = store.unack(&sig(1), "u", NOW).unwrap_err();
    assert!(matches!(err, AckError::NotFound { .. }));
    assert_eq!(err.http_status(), 404);
}

#[test]
fn the_store_can_move_between_threads() {
    fn send<T: Send>() {}
    send::<AckStore>();
}

#[test]
fn a_failed_write_changes_nothing_and_the_next_one_still_lands() {
    let dir = TempDir::new("failed");
    let path = dir.join("acks.jsonl");
    let mut store = open(&path);
    store.ack(entry(1, None)).unwrap();
    // A read-only handle: the append fails, and so does cutting it back.
    store.file = File::open(&path).unwrap();
    let err = store.ack(entry(2, None)).unwrap_err();
    assert!(matches!(err, AckError::Io { .. }), "{err:?}");
    assert_eq!(err.http_status(), 500);
    assert!(store.get(&sig(2), NOW).is_none());
    let err = store.unack(&sig(1), "u", NOW).unwrap_err();
    assert!(matches!(err, AckError::Io { .. }), "{err:?}");
    assert!(store.get(&sig(1), NOW).is_some());

    store.file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    store.ack(entry(3, None)).unwrap();
    drop(store);
    let store = open(&path);
    assert!(store.replay_report().skipped.is_empty());
    let active: Vec<String> = store.active(NOW).into_iter().map(|a| a.signature).collect();
    assert_eq!(active, [sig(1), sig(3)]);
}

#[test]
fn replaying_text_reads_what_a_reopen_reads_and_its_compaction_is_stable() {
    let dir = TempDir::new("replay-text");
    let path = dir.join("acks.jsonl");
    let text = format!(
        "{}\nnot json\n{}\n{}",
        ack_line(&entry(1, None)).unwrap(),
        ack_line(&entry(2, Some(NOW - Duration::hours(1)))).unwrap(),
        &ack_line(&entry(3, None)).unwrap()[..30],
    );
    write_file(&path, &text, 0o600);
    let store = open(&path);

    let replayed = replay_jsonl(text.as_bytes(), &Limits::default(), NOW).unwrap();
    assert_eq!(replayed.acks, store.active(NOW));
    assert_eq!(&replayed.report, store.replay_report());
    assert_eq!(replayed.report.expired, 1);
    assert_eq!(
        String::from_utf8(replayed.compacted.clone()).unwrap(),
        std::fs::read_to_string(&path).unwrap()
    );
    // Replaying the compacted text gives the same acks and skips nothing.
    let again = replay_jsonl(&replayed.compacted, &Limits::default(), NOW).unwrap();
    assert_eq!(again.acks, replayed.acks);
    assert_eq!(again.report.skipped_total, 0);
    assert_eq!(again.compacted, replayed.compacted);
}
