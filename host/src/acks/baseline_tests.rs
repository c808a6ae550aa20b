//! Tests of the CI baseline file.

use time::macros::{date, datetime};

use super::*;
use crate::acks::testutil::{TempDir, sig, write_file};

fn parse(text: &str) -> Result<Baseline, AckError> {
    Baseline::from_toml_str(text, Path::new("ci/acks.toml"))
}

fn problems(text: &str) -> Vec<String> {
    match parse(text) {
        Err(AckError::BaselineInvalid { problems, .. }) => {
            problems.iter().map(ToString::to_string).collect()
        }
        other => panic!("expected problems, got {other:?}"),
    }
}

fn entry(signature: &str, expires: &str) -> String {
    format!(
        "[[acknowledged]]\nsignature = \"{signature}\"\nacknowledged_by = \"alice\"\n\
         acknowledged_at = \"2026-01-10\"\nreason = \"known, fix planned\"\n{expires}\n"
    )
}

#[test]
fn loads_entries_with_and_without_expiry() {
    let text = format!(
        "{}{}{}",
        entry(&sig(1), ""),
        entry(&sig(2), "expires_at = 2026-12-31"),
        entry(&sig(3), "expires_at = \"2026-06-30\""),
    );
    let baseline = parse(&text).unwrap();
    assert_eq!(baseline.len(), 3);
    assert_eq!(baseline.path(), Some(Path::new("ci/acks.toml")));
    let now = datetime!(2026-03-01 0:00 UTC);
    let one = baseline.get(&sig(1), now).unwrap();
    assert_eq!(
        *one,
        BaselineAck {
            signature: sig(1),
            by: "alice".into(),
            at: "2026-01-10".into(),
            reason: "known, fix planned".into(),
            expires: None,
        }
    );
    assert_eq!(
        baseline.get(&sig(2), now).unwrap().expires,
        Some(date!(2026 - 12 - 31))
    );
    assert_eq!(
        baseline.get(&sig(3), now).unwrap().expires_at().as_deref(),
        Some("2026-06-30")
    );
    assert!(baseline.get(&sig(4), now).is_none());
}

#[test]
fn an_expiry_date_covers_that_whole_day_in_utc() {
    let baseline = parse(&entry(&sig(1), "expires_at = 2026-12-31")).unwrap();
    let active = |t| baseline.get(&sig(1), t).is_some();
    assert!(active(datetime!(2026-12-31 0:00 UTC)));
    assert!(active(datetime!(2026-12-31 23:59:59.999 UTC)));
    assert!(!active(datetime!(2027-01-01 0:00 UTC)));
    // The day is UTC's: 01:00 on Jan 1st at +02:00 is still Dec 31st UTC,
    // 23:00 on Dec 31st at -02:00 is already Jan 1st.
    assert!(active(datetime!(2027-01-01 1:00 +2)));
    assert!(!active(datetime!(2026-12-31 23:00 -2)));
}

#[test]
fn a_renewed_entry_next_to_an_expired_one_applies() {
    let text = format!(
        "{}{}",
        entry(&sig(1), "expires_at = 2025-12-31"),
        entry(&sig(1), "expires_at = 2026-12-31"),
    );
    let baseline = parse(&text).unwrap();
    let ack = baseline
        .get(&sig(1), datetime!(2026-03-01 0:00 UTC))
        .unwrap();
    assert_eq!(ack.expires, Some(date!(2026 - 12 - 31)));
}

#[test]
fn acknowledged_at_may_be_a_toml_date_and_is_kept_as_written() {
    let text = entry(&sig(1), "").replace("\"2026-01-10\"", "2026-01-10T09:30:00Z");
    let baseline = parse(&text).unwrap();
    let ack = baseline
        .get(&sig(1), datetime!(2026-03-01 0:00 UTC))
        .unwrap();
    assert_eq!(ack.at, "2026-01-10T09:30:00Z");
}

#[test]
fn text_is_cleaned() {
    let text = entry(&sig(1), "").replace("alice", "al\\u202Eice\\u200B");
    let baseline = parse(&text).unwrap();
    assert_eq!(
        baseline
            .get(&sig(1), datetime!(2026-03-01 0:00 UTC))
            .unwrap()
            .by,
        "alice"
    );
}

#[test]
fn every_bad_entry_is_reported_with_its_index_and_key() {
    let text = format!(
        "{}{}{}{}",
        entry(&sig(1), "expires_at = 2026-12-31T10:00:00Z"),
        entry("not-a-signature", "owner = \"x\""),
        "[[acknowledged]]\nsignature = 42\nreason = \"r\"\n",
        entry(&sig(4), "expires_at = \"next year\""),
    );
    let found = problems(&text);
    let expected = [
        "`acknowledged[0].expires_at`: must be a date like 2026-12-31 (a date only",
        "`acknowledged[1].owner`: unknown key",
        "`acknowledged[1].signature`: malformed finding signature",
        "`acknowledged[2].signature`: must be a string, got integer",
        "`acknowledged[2].acknowledged_by`: missing",
        "`acknowledged[2].acknowledged_at`: missing",
        "`acknowledged[3].expires_at`: must be a date like 2026-12-31, got \"next year\"",
    ];
    assert_eq!(found.len(), expected.len(), "{found:#?}");
    for (line, want) in found.iter().zip(expected) {
        assert!(line.starts_with(want), "{line}");
    }
    let message = parse(&text).unwrap_err().to_string();
    assert_eq!(message.lines().count(), expected.len());
    assert!(
        message
            .lines()
            .all(|l| l.starts_with("ack baseline ci/acks.toml: `acknowledged["))
    );
}

#[test]
fn empty_names_and_unknown_top_level_keys_are_refused() {
    let text = format!(
        "version = 1\n{}",
        entry(&sig(1), "").replace("alice", " \\u200B ")
    );
    let found = problems(&text);
    assert_eq!(found.len(), 2, "{found:#?}");
    let has = |want: &str| found.iter().any(|p| p.contains(want));
    assert!(has("`version`: unknown key"), "{found:#?}");
    assert!(
        has("`acknowledged[0].acknowledged_by`: must not be empty"),
        "{found:#?}"
    );
    let found = problems("acknowledged = 3\n");
    assert!(found[0].contains("array of tables"), "{found:#?}");
}

#[test]
fn invalid_toml_names_the_file_and_line() {
    let err = parse("[[acknowledged]]\nsignature = \n").unwrap_err();
    assert!(matches!(err, AckError::BaselineParse { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.starts_with("ack baseline ci/acks.toml: invalid TOML: line 2"),
        "{message}"
    );
}

#[test]
fn load_reads_a_file_and_reports_a_missing_one() {
    let dir = TempDir::new("baseline");
    let path = dir.join("acks.toml");
    let err = Baseline::load(&path).unwrap_err();
    assert!(
        matches!(&err, AckError::BaselineMissing { path: p } if *p == path),
        "{err:?}"
    );
    write_file(&path, &entry(&sig(1), ""), 0o644);
    let baseline = Baseline::load(&path).unwrap();
    assert_eq!(baseline.path(), Some(path.as_path()));
    assert_eq!(baseline.len(), 1);
    assert!(Baseline::empty().is_empty());
    assert!(parse("").unwrap().is_empty());
}
