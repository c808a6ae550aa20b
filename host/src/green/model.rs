//! The proxy energy model: what one outbound I/O operation costs, before
//! any measurement. A fixed baseline per operation, weighted by what the
//! operation does (SQL verb) or moves (HTTP response size).

use detector_api::IoKind;

/// Energy of one I/O operation of weight 1, in kWh.
pub const BASELINE_KWH_PER_OP: f64 = 1e-7;

/// The weight of a SQL statement, from its leading verb.
pub fn sql_weight(statement: &str) -> f64 {
    let verb = statement
        .trim_start_matches(|c: char| c.is_whitespace() || c == '(')
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or("");
    if verb.eq_ignore_ascii_case("select") {
        0.5
    } else if verb.eq_ignore_ascii_case("insert") || verb.eq_ignore_ascii_case("update") {
        1.5
    } else if verb.eq_ignore_ascii_case("delete") {
        1.2
    } else {
        1.0
    }
}

/// The weight of an HTTP call, from its response size when known.
pub fn http_weight(response_bytes: Option<u64>) -> f64 {
    match response_bytes {
        None => 1.0,
        Some(b) if b < 10 * 1024 => 0.8,
        Some(b) if b <= 1024 * 1024 => 1.2,
        Some(_) => 2.0,
    }
}

/// The proxy IT energy of one outbound operation of `kind`, in kWh:
/// SQL weighed by its statement's verb, HTTP by its response size.
pub fn proxy_op_kwh(kind: IoKind, statement: &str, response_bytes: Option<u64>) -> f64 {
    BASELINE_KWH_PER_OP
        * match kind {
            IoKind::Sql => sql_weight(statement),
            IoKind::Http => http_weight(response_bytes),
            _ => 1.0,
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_weigh_as_documented_whatever_their_case() {
        assert_eq!(sql_weight("SELECT * FROM t"), 0.5);
        assert_eq!(sql_weight("  select id from t"), 0.5);
        assert_eq!(sql_weight("(SELECT 1) UNION (SELECT 2)"), 0.5);
        assert_eq!(sql_weight("INSERT INTO t VALUES (?)"), 1.5);
        assert_eq!(sql_weight("update t set a = ?"), 1.5);
        assert_eq!(sql_weight("DELETE FROM t"), 1.2);
        assert_eq!(sql_weight("CALL proc(?)"), 1.0);
        assert_eq!(sql_weight(""), 1.0);
        assert_eq!(sql_weight("SELECTED"), 1.0);
    }

    #[test]
    fn response_sizes_weigh_by_band() {
        assert_eq!(http_weight(None), 1.0);
        assert_eq!(http_weight(Some(0)), 0.8);
        assert_eq!(http_weight(Some(10 * 1024 - 1)), 0.8);
        assert_eq!(http_weight(Some(10 * 1024)), 1.2);
        assert_eq!(http_weight(Some(1024 * 1024)), 1.2);
        assert_eq!(http_weight(Some(1024 * 1024 + 1)), 2.0);
    }
}
