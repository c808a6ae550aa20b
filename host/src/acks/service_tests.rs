//! Tests of the ack service: validation, conflicts, sources and an
//! unavailable store.

use std::path::Path;

use time::Duration;
use time::macros::datetime;

use super::*;
use crate::acks::testutil::{TempDir, sig};
use crate::acks::{ANONYMOUS, Limits};

const NOW: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);

fn service(dir: &TempDir, baseline: &str) -> AckService {
    let baseline = Baseline::from_toml_str(baseline, Path::new("ci/acks.toml")).unwrap();
    let store = AckStore::open_with_limits(&dir.join("acks.jsonl"), false, Limits::default(), NOW);
    AckService::new(baseline, store)
}

fn baseline_entry(n: u32, expires: &str) -> String {
    format!(
        "[[acknowledged]]\nsignature = \"{}\"\nacknowledged_by = \"ci-bot\"\n\
         acknowledged_at = \"2026-01-10\"\nreason = \"legacy\"\n{expires}\n",
        sig(n)
    )
}

#[test]
fn ack_cleans_input_and_is_listed_and_looked_up() {
    let dir = TempDir::new("svc-ack");
    let mut acks = service(&dir, "");
    let end = NOW + Duration::days(7);
    let ack = acks
        .ack(&sig(1), " bob\u{202E} ", "slow\nbut fine", Some(end), NOW)
        .unwrap();
    assert_eq!(
        (ack.by.as_str(), ack.reason.as_str()),
        ("bob", "slow but fine")
    );
    assert_eq!(acks.list(NOW), [ack]);
    let info = acks.lookup(&sig(1), NOW).unwrap();
    assert_eq!(
        serde_json::to_value(&info).unwrap(),
        serde_json::json!({
            "source": "daemon",
            "by": "bob",
            "at": "2026-03-01T12:00:00Z",
            "reason": "slow but fine",
            "expires_at": "2026-03-08T12:00:00Z",
        })
    );
    assert!(acks.is_acked(&sig(1), NOW));
    let anonymous = acks.ack(&sig(2), "\u{200B}", "", None, NOW).unwrap();
    assert_eq!(anonymous.by, ANONYMOUS);
}

#[test]
fn a_malformed_signature_is_refused_before_anything_else() {
    let dir = TempDir::new("svc-sig");
    let mut acks = service(&dir, "");
    for bad in ["", "kind:svc:hash", "x:s:e:ZZ"] {
        let err = acks.ack(bad, "bob", "", None, NOW).unwrap_err();
        assert!(
            matches!(err, AckError::MalformedSignature { .. }),
            "{err:?}"
        );
        assert_eq!(err.http_status(), 400);
        assert_eq!(acks.unack(bad, "bob", NOW).unwrap_err().http_status(), 400);
    }
    assert!(acks.list(NOW).is_empty());
}

#[test]
fn an_expiry_in_the_past_is_refused() {
    let dir = TempDir::new("svc-past");
    let mut acks = service(&dir, "");
    for end in [NOW - Duration::seconds(1), NOW] {
        let err = acks.ack(&sig(1), "bob", "", Some(end), NOW).unwrap_err();
        assert!(
            matches!(
                err,
                AckError::InvalidInput {
                    field: "expires_at",
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(err.http_status(), 400);
    }
    assert!(acks.lookup(&sig(1), NOW).is_none());
}

#[test]
fn a_signature_in_the_baseline_conflicts_and_the_baseline_wins_lookup() {
    let dir = TempDir::new("svc-baseline");
    let mut acks = service(&dir, &baseline_entry(1, "expires_at = 2026-03-31"));
    let err = acks.ack(&sig(1), "bob", "", None, NOW).unwrap_err();
    assert_eq!(err.http_status(), 409);
    assert!(
        err.to_string()
            .contains("acknowledged in the CI baseline ci/acks.toml (by ci-bot)"),
        "{err}"
    );
    let info = acks.lookup(&sig(1), NOW).unwrap();
    assert_eq!(
        serde_json::to_value(&info).unwrap(),
        serde_json::json!({
            "source": "toml",
            "by": "ci-bot",
            "at": "2026-01-10",
            "reason": "legacy",
            "expires_at": "2026-03-31",
        })
    );
    // After the baseline entry's last day, the runtime store may take over.
    let april = datetime!(2026-04-01 0:00 UTC);
    assert!(acks.lookup(&sig(1), april).is_none());
    acks.ack(&sig(1), "bob", "", None, april).unwrap();
    assert_eq!(
        acks.lookup(&sig(1), april).unwrap().source,
        AckSource::Daemon
    );
}

#[test]
fn a_second_runtime_ack_conflicts() {
    let dir = TempDir::new("svc-twice");
    let mut acks = service(&dir, "");
    acks.ack(&sig(1), "alice", "", None, NOW).unwrap();
    let err = acks.ack(&sig(1), "bob", "", None, NOW).unwrap_err();
    assert!(matches!(err, AckError::Conflict { .. }), "{err:?}");
    assert!(err.to_string().contains("at runtime by alice"), "{err}");
    assert_eq!(acks.lookup(&sig(1), NOW).unwrap().by, "alice");
}

#[test]
fn unack_removes_a_runtime_ack_and_is_not_found_otherwise() {
    let dir = TempDir::new("svc-unack");
    let mut acks = service(&dir, &baseline_entry(2, ""));
    acks.ack(&sig(1), "alice", "", None, NOW).unwrap();
    acks.unack(&sig(1), "bob", NOW).unwrap();
    assert!(!acks.is_acked(&sig(1), NOW));
    for n in [1, 2, 3] {
        let err = acks.unack(&sig(n), "bob", NOW).unwrap_err();
        assert!(matches!(err, AckError::NotFound { .. }), "{err:?}");
        assert_eq!(err.http_status(), 404);
    }
    // The baseline's own ack is untouched.
    assert!(acks.is_acked(&sig(2), NOW));
}

#[test]
fn an_expired_runtime_ack_no_longer_applies() {
    let dir = TempDir::new("svc-expired");
    let mut acks = service(&dir, "");
    let end = NOW + Duration::hours(1);
    acks.ack(&sig(1), "alice", "", Some(end), NOW).unwrap();
    assert!(acks.is_acked(&sig(1), end - Duration::seconds(1)));
    assert!(!acks.is_acked(&sig(1), end));
    assert!(acks.lookup(&sig(1), end).is_none());
    assert!(acks.list(end).is_empty());
    assert!(matches!(
        acks.unack(&sig(1), "bob", end),
        Err(AckError::NotFound { .. })
    ));
    // And it can be acknowledged afresh.
    acks.ack(&sig(1), "bob", "", None, end).unwrap();
}

#[test]
fn an_unavailable_store_explains_itself_and_the_baseline_still_applies() {
    let dir = TempDir::new("svc-unavailable");
    let path = dir.join("acks.jsonl");
    crate::acks::testutil::write_file(&path, "", 0o644);
    let store = AckStore::open_with_limits(&path, true, Limits::default(), NOW);
    let baseline =
        Baseline::from_toml_str(&baseline_entry(1, ""), Path::new("ci/acks.toml")).unwrap();
    let mut acks = AckService::new(baseline, store);
    assert!(acks.unavailable_reason().unwrap().contains("mode 0644"));
    let err = acks.ack(&sig(2), "bob", "", None, NOW).unwrap_err();
    assert!(
        matches!(&err, AckError::Unavailable(reason) if reason.contains("chmod 600")),
        "{err:?}"
    );
    assert_eq!(err.http_status(), 503);
    assert_eq!(
        acks.unack(&sig(2), "bob", NOW).unwrap_err().http_status(),
        503
    );
    assert!(acks.list(NOW).is_empty());
    assert_eq!(acks.lookup(&sig(1), NOW).unwrap().source, AckSource::Toml);
    // A baseline conflict is still reported as such.
    assert_eq!(
        acks.ack(&sig(1), "bob", "", None, NOW)
            .unwrap_err()
            .http_status(),
        409
    );
}

#[test]
fn the_service_can_be_shared_behind_a_mutex() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<std::sync::Mutex<AckService>>();
}
