//! Checks that a string received for acknowledgment has the shape of a
//! finding signature (see `findings::record::signature`), so the store only
//! ever holds keys a finding could match.

use super::AckError;

/// Longest signature accepted, in bytes.
pub const MAX_SIGNATURE_BYTES: usize = 1024;
const MAX_KIND_BYTES: usize = 64;
const HASH_HEX: usize = 32;

/// Accepts `<kind>:<service>:<endpoint>:<32 lowercase hex>`: `kind` is 1 to
/// 64 of `[a-z0-9_.-]` (plugin kinds are namespaced with a dot), service is
/// non-empty, endpoint may be empty (a finding outside any inbound request,
/// or a cross-trace one), nothing is a control character and the whole is
/// at most 1024 bytes.
///
/// Service and endpoint may themselves contain `:` (a `host:port` endpoint),
/// so `kind` ends at the first `:` and the hash starts after the last; the
/// middle only has to split somewhere into a non-empty service and the rest.
pub fn validate_signature(signature: &str) -> Result<(), AckError> {
    let malformed = |reason| AckError::MalformedSignature {
        signature: shown(signature),
        reason,
    };
    if signature.len() > MAX_SIGNATURE_BYTES {
        return Err(malformed("longer than 1024 bytes"));
    }
    if signature.chars().any(char::is_control) {
        return Err(malformed("contains a control character"));
    }
    let Some((kind, rest)) = signature.split_once(':') else {
        return Err(malformed("expected <kind>:<service>:<endpoint>:<hash>"));
    };
    if kind.is_empty()
        || kind.len() > MAX_KIND_BYTES
        || !kind.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-')
        })
    {
        return Err(malformed("kind must be 1 to 64 of a-z, 0-9, _, . and -"));
    }
    let Some((middle, hash)) = rest.rsplit_once(':') else {
        return Err(malformed("expected <kind>:<service>:<endpoint>:<hash>"));
    };
    if hash.len() != HASH_HEX
        || !hash
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(malformed("hash must be 32 lowercase hex digits"));
    }
    // Some split of `middle` at a `:` gives a non-empty service exactly
    // when it has a `:` that is not its first character.
    let splits = middle.match_indices(':').any(|(i, _)| i > 0);
    if !splits {
        return Err(malformed("service must be non-empty"));
    }
    Ok(())
}

/// The signature for an error message: escaped, at most 100 characters, so a
/// hostile value cannot flood or garble logs.
fn shown(signature: &str) -> String {
    const SHOWN: usize = 100;
    let mut out: String = signature.chars().take(SHOWN).collect();
    if signature.chars().nth(SHOWN).is_some() {
        out.push('…');
    }
    format!("{out:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "0123456789abcdef0123456789abcdef";

    fn ok(s: &str) {
        assert!(validate_signature(s).is_ok(), "{s} should be accepted");
    }

    fn refused(s: &str, why: &str) {
        match validate_signature(s) {
            Err(AckError::MalformedSignature { reason, .. }) => {
                assert!(reason.contains(why), "{s}: {reason}");
            }
            other => panic!("{s} should be refused, got {other:?}"),
        }
    }

    #[test]
    fn accepts_signatures_the_host_produces() {
        ok(&format!("n_plus_one_sql:order-svc:GET__api_orders:{HASH}"));
        ok(&format!("slow_http:a:b:{HASH}"));
        // `:` inside service or endpoint: kind is first, hash is last.
        ok(&format!(
            "redundant_http:cart:GET_http:__inventory:8080_items:{HASH}"
        ));
        ok(&format!("k:a::b:{HASH}"));
        // Non-ASCII service names are legitimate.
        ok(&format!("k:säljtjänst:ändpunkt:{HASH}"));
    }

    #[test]
    fn refuses_bad_kinds() {
        refused(&format!(":s:e:{HASH}"), "kind");
        refused(&format!("N_Plus_One:s:e:{HASH}"), "kind");
        refused(&format!("a b:s:e:{HASH}"), "kind");
        refused(&format!("a/b:s:e:{HASH}"), "kind");
        refused(&format!("{}:s:e:{HASH}", "k".repeat(65)), "kind");
        ok(&format!("{}:s:e:{HASH}", "k".repeat(64)));
    }

    #[test]
    fn refuses_bad_hashes() {
        refused("k:s:e:0123456789abcdef", "hash");
        refused(&format!("k:s:e:{}", HASH.to_uppercase()), "hash");
        refused(&format!("k:s:e:{HASH}0"), "hash");
        refused(&format!("k:s:e:{}g", &HASH[..31]), "hash");
        refused(&format!("k:s:e:{HASH}:"), "hash");
    }

    #[test]
    fn refuses_missing_parts() {
        refused("", "expected");
        refused("nocolons", "expected");
        refused(&format!("k:{HASH}"), "expected");
        refused(&format!("k:s:{HASH}"), "non-empty");
        refused(&format!("k::e:{HASH}"), "non-empty");
        refused(&format!("k:::{HASH}"), "non-empty");
        // No endpoint (cross-trace and endpoint-less findings) and plugin
        // kinds with a namespace are real signatures.
        assert!(validate_signature(&format!("k:s::{HASH}")).is_ok());
        assert!(validate_signature(&format!("acme.select_star:s:GET__a:{HASH}")).is_ok());
    }

    #[test]
    fn refuses_control_characters_and_oversize() {
        refused(&format!("k:s\n:e:{HASH}"), "control");
        refused(&format!("k:s:e\u{7f}:{HASH}"), "control");
        refused(&format!("k:s\u{85}x:e:{HASH}"), "control");
        let long = format!("k:s:{}:{HASH}", "e".repeat(MAX_SIGNATURE_BYTES));
        refused(&long, "1024");
        let exact = format!(
            "k:s:{}:{HASH}",
            "e".repeat(MAX_SIGNATURE_BYTES - 5 - HASH.len())
        );
        assert_eq!(exact.len(), MAX_SIGNATURE_BYTES);
        ok(&exact);
    }

    #[test]
    fn error_shows_an_escaped_shortened_signature() {
        let s = format!("k:\u{1b}[31m{}:e:{HASH}", "x".repeat(500));
        let message = validate_signature(&s).unwrap_err().to_string();
        assert!(!message.contains('\u{1b}'), "{message}");
        assert!(message.contains("\\u{1b}"), "{message}");
        assert!(message.len() < 250, "{message}");
    }
}
