//! HTTP client-span normalization: `METHOD host/path` with id-like path segments replaced by
//! `{id}` and the query dropped, so calls to one endpoint share a template; the ids and query
//! pairs are reported as byte ranges of the URL. Credentials never reach the template.

use std::ops::Range;

use super::{Normalized, cap};

/// Longest URL normalized; longer ones are cut here (at a char boundary).
pub const MAX_HTTP_URL: usize = 8 * 1024;
/// Longest method kept; real methods are short, anything longer is garbage worth bounding.
pub const MAX_HTTP_METHOD: usize = 16;

/// Appends `"{METHOD} {host}{path}"` to `out` (no method prefix when `method` is empty) and
/// pushes the byte ranges, within `url`, of every `{id}` segment and every query pair.
///
/// `url` is absolute (`scheme://[userinfo@]host[:port]/path?query#fragment`) or a path. The
/// scheme, userinfo, query and fragment are dropped; the host is lowercased. Scheme-less text
/// whose first segment holds an `@` is read as `userinfo@host/path` so credentials are dropped
/// there too.
pub fn normalize_http(
    method: &str,
    url: &str,
    out: &mut String,
    params: &mut Vec<Range<usize>>,
) -> Normalized {
    let (method, method_cut) = cap(method, MAX_HTTP_METHOD);
    let (url, url_cut) = cap(url, MAX_HTTP_URL);
    let b = url.as_bytes();

    out.reserve(method.len() + 1 + url.len());
    if !method.is_empty() {
        if method.bytes().any(|c| c.is_ascii_lowercase()) {
            out.extend(method.chars().map(|c| c.to_ascii_uppercase()));
        } else {
            out.push_str(method);
        }
        out.push(' ');
    }

    let query = b
        .iter()
        .position(|&c| c == b'?' || c == b'#')
        .unwrap_or(b.len());
    let frag = if at_is(b, query, b'?') {
        find(b, query, b.len(), b'#')
    } else {
        query
    };
    let (host, path_start) = split_authority(b, query);

    if let Some(host) = host {
        let host = url.get(host).unwrap_or_default();
        if host.bytes().any(|c| c.is_ascii_uppercase()) {
            out.extend(host.chars().map(|c| c.to_ascii_lowercase()));
        } else {
            out.push_str(host);
        }
    }

    if path_start >= query {
        out.push('/');
    } else {
        // the path is copied as is between `{id}` segments, in as few pieces as possible
        let mut copied = path_start;
        let mut seg = path_start;
        loop {
            let end = find(b, seg, query, b'/');
            if is_id(b.get(seg..end).unwrap_or_default()) {
                out.push_str(url.get(copied..seg).unwrap_or_default());
                out.push_str("{id}");
                params.push(seg..end);
                copied = end;
            }
            if end >= query {
                break;
            }
            seg = end + 1;
        }
        out.push_str(url.get(copied..query).unwrap_or_default());
    }

    // `?`, `&` and `#` are ASCII, so every pair boundary is a char boundary
    let mut pair = query + 1;
    while pair < frag {
        let end = find(b, pair, frag, b'&');
        if end > pair {
            params.push(pair..end);
        }
        pair = end + 1;
    }

    Normalized {
        truncated: method_cut || url_cut,
    }
}

fn at_is(b: &[u8], i: usize, c: u8) -> bool {
    b.get(i) == Some(&c)
}

/// Position of the first `needle` in `b[from..to]`, or `to`.
fn find(b: &[u8], from: usize, to: usize, needle: u8) -> usize {
    b.get(from..to)
        .and_then(|s| s.iter().position(|&c| c == needle))
        .map_or(to, |p| from + p)
}

/// Splits the part of the URL before the query (`b[..end]`) into the host range (after any
/// userinfo) and the start of the path.
fn split_authority(b: &[u8], end: usize) -> (Option<Range<usize>>, usize) {
    if b.first() == Some(&b'/') {
        return (None, 0);
    }
    let auth_start = match scheme_len(b) {
        Some(len) => len + 3,
        None => {
            let first_seg = find(b, 0, end, b'/');
            if find(b, 0, first_seg, b'@') == first_seg {
                return (None, 0);
            }
            0
        }
    };
    let auth_end = find(b, auth_start.min(end), end, b'/');
    let host_start = b
        .get(auth_start..auth_end)
        .and_then(|a| a.iter().rposition(|&c| c == b'@'))
        .map_or(auth_start, |p| auth_start + p + 1);
    (Some(host_start..auth_end), auth_end)
}

/// Length of a leading RFC 3986 scheme when it is followed by `://`.
fn scheme_len(b: &[u8]) -> Option<usize> {
    if !b.first()?.is_ascii_alphabetic() {
        return None;
    }
    let len = b
        .iter()
        .position(|&c| !(c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.')))?;
    (b.get(len..len + 3) == Some(b"://")).then_some(len)
}

/// All digits, a UUID, or 16+ hex chars with at least one digit: values that differ per call.
fn is_id(s: &[u8]) -> bool {
    if s.is_empty() {
        return false;
    }
    if s.iter().all(u8::is_ascii_digit) {
        return true;
    }
    let uuid = s.len() == 36
        && s.iter().enumerate().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                *c == b'-'
            } else {
                c.is_ascii_hexdigit()
            }
        });
    if uuid {
        return true;
    }
    s.len() >= 16 && s.iter().all(u8::is_ascii_hexdigit) && s.iter().any(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn norm<'u>(method: &str, url: &'u str) -> (String, Vec<&'u str>, bool) {
        let mut out = String::new();
        let mut params = Vec::new();
        let n = normalize_http(method, url, &mut out, &mut params);
        let params = params.into_iter().map(|r| &url[r]).collect();
        (out, params, n.truncated)
    }

    #[test]
    fn table() {
        let uuid = "550e8400-E29B-41d4-a716-446655440000";
        let cases: &[(&str, &str, &str, &[&str])] = &[
            (
                "GET",
                "https://user:pw@API.Example.com:8443/v1/users/42?x=1#frag",
                "GET api.example.com:8443/v1/users/{id}",
                &["42", "x=1"],
            ),
            (
                "get",
                "/v1/users/42?x=1",
                "GET /v1/users/{id}",
                &["42", "x=1"],
            ),
            ("Patch", "/a/b", "PATCH /a/b", &[]),
            ("", "/a/b", "/a/b", &[]),
            (
                "GET",
                "/orders/550e8400-E29B-41d4-a716-446655440000/items",
                "GET /orders/{id}/items",
                &[uuid],
            ),
            (
                "GET",
                "/blobs/deadBEEFdeadbeef01",
                "GET /blobs/{id}",
                &["deadBEEFdeadbeef01"],
            ),
            (
                "GET",
                "/blobs/deadbeefdeadbeef/abc123/v2",
                "GET /blobs/deadbeefdeadbeef/abc123/v2",
                &[],
            ),
            (
                "GET",
                "/users/{id}/posts/{id}",
                "GET /users/{id}/posts/{id}",
                &[],
            ),
            (
                "GET",
                "/k/550e8400e29b41d4a716446655440000/550e8400-e29b-41d4-a716-44665544000g",
                "GET /k/{id}/550e8400-e29b-41d4-a716-44665544000g",
                &["550e8400e29b41d4a716446655440000"],
            ),
            ("GET", "/s?a=1&&b=2&c&", "GET /s", &["a=1", "b=2", "c"]),
            ("GET", "/p#x?y=1", "GET /p", &[]),
            ("GET", "http://example.com", "GET example.com/", &[]),
            (
                "GET",
                "http://Example.com?q=1#f",
                "GET example.com/",
                &["q=1"],
            ),
            ("GET", "", "GET /", &[]),
            ("GET", "v1/users/7", "GET v1/users/{id}", &["7"]),
            ("GET", "user:pw@Host/x/9", "GET host/x/{id}", &["9"]),
            ("GET", "http://user@host/a/", "GET host/a/", &[]),
            ("GET", "//x//1", "GET //x//{id}", &["1"]),
            ("POST", "http://[::1]:8080/a", "POST [::1]:8080/a", &[]),
            ("GET", "/café/123", "GET /café/{id}", &["123"]),
            ("GET", "mailto:x", "GET mailto:x", &[]),
            ("GET", "http:///x", "GET /x", &[]),
        ];
        for &(method, url, template, params) in cases {
            let (out, got, truncated) = norm(method, url);
            assert_eq!(out, template, "template of {url:?}");
            assert_eq!(got, params, "params of {url:?}");
            assert!(!truncated);
            check(method, url).unwrap();
        }
    }

    #[test]
    fn caps_method_and_url() {
        let (out, _, truncated) = norm("abcdefghijklmnopqrstu", "/");
        assert_eq!(out, "ABCDEFGHIJKLMNOP /");
        assert!(truncated);
        let long = format!("/{}", "é".repeat(5000));
        let (out, _, truncated) = norm("GET", &long);
        assert!(truncated);
        assert!(out.len() <= "GET ".len() + MAX_HTTP_URL);
    }

    #[test]
    fn appends_without_clearing() {
        let mut out = String::from("x|");
        let mut params = Vec::new();
        normalize_http("GET", "/a/1", &mut out, &mut params);
        normalize_http("", "/b?k=v", &mut out, &mut params);
        assert_eq!(out, "x|GET /a/{id}/b");
        assert_eq!(params, vec![3..4, 3..6]);
    }

    /// Ranges are valid, the method prefix is the only method-dependent part, and feeding the
    /// `{host}{path}` part back (behind a scheme when there was a host) reproduces it.
    fn check(method: &str, url: &str) -> Result<(), TestCaseError> {
        let mut full = String::new();
        let mut params = Vec::new();
        normalize_http(method, url, &mut full, &mut params);
        for r in &params {
            prop_assert!(url.get(r.clone()).is_some(), "bad range {r:?}");
        }
        let mut bare = String::new();
        normalize_http("", url, &mut bare, &mut Vec::new());
        prop_assert!(full.ends_with(&bare));

        let (capped, _) = cap(url, MAX_HTTP_URL);
        let b = capped.as_bytes();
        let query = find(b, 0, find(b, 0, b.len(), b'#'), b'?');
        let refeed = if split_authority(b, query).0.is_some() {
            format!("http://{bare}")
        } else {
            bare.clone()
        };
        let mut again = String::new();
        let mut p2 = Vec::new();
        normalize_http("", &refeed, &mut again, &mut p2);
        prop_assert_eq!(&again, &bare);
        prop_assert!(p2.iter().all(|r| refeed.get(r.clone()).is_some()));
        Ok(())
    }

    fn urlish() -> impl Strategy<Value = String> {
        let token = prop_oneof![
            Just("http"),
            Just("HTTPS"),
            Just("://"),
            Just(":"),
            Just("/"),
            Just("//"),
            Just("@"),
            Just("?"),
            Just("#"),
            Just("&"),
            Just("="),
            Just("user"),
            Just("Host"),
            Just(".com"),
            Just("8080"),
            Just("42"),
            Just("{id}"),
            Just("deadbeef"),
            Just("0123456789abcdef"),
            Just("550e8400-e29b-41d4-a716-446655440000"),
            Just("-"),
            Just("é"),
            Just("["),
            Just("]"),
            Just(" "),
            Just("%20"),
        ];
        prop::collection::vec(token, 0..24).prop_map(|v| v.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn arbitrary_strings(method in ".{0,24}", url in ".*") {
            check(&method, &url)?;
        }

        #[test]
        fn url_like_strings(method in "[a-zA-Z]{0,20}", url in urlish()) {
            check(&method, &url)?;
        }
    }
}
