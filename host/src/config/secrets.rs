//! Secrets never live in the config file. Wherever a credential key
//! appears (`[daemon.ack] api_key`, `[green.electricity_maps] api_key`,
//! scrapers' `auth_header`, a plugin's `token`...), its value must read
//! `env:VAR_NAME`; and no URL may carry `user:password@`. Values are never
//! echoed in the problem: they may be the secret itself.

use toml::{Table, Value};

use super::problems::{Problems, join_key};

/// Key names that hold credentials, wherever they appear.
pub(crate) const CREDENTIAL_KEYS: &[&str] = &[
    "api_key",
    "auth_header",
    "authorization",
    "bearer_token",
    "password",
    "secret",
    "token",
];

/// The variable a credential names, or why the value is refused.
pub(crate) fn env_reference(value: &Value) -> Result<&str, &'static str> {
    match value {
        Value::String(v) => match v.strip_prefix("env:") {
            Some(var) if is_env_var_name(var) => Ok(var),
            Some(_) => Err(
                "`env:` must be followed by an environment variable name (letters, digits and `_`, not starting with a digit)",
            ),
            None => Err("secrets never live in the config file; write `env:VAR_NAME`"),
        },
        _ => Err("expected a string of the form `env:VAR_NAME`"),
    }
}

pub(crate) fn is_env_var_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// True for `scheme://user[:password]@host...`.
fn embeds_credentials(text: &str) -> bool {
    let Some((scheme, rest)) = text.split_once("://") else {
        return false;
    };
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    scheme_ok && authority.contains('@')
}

/// Reports every credential held as a literal and every URL with embedded
/// credentials, anywhere in `table`.
pub(crate) fn check_secrets(table: &Table, problems: &mut Problems<'_>) {
    walk_table("", table, problems);
}

fn walk_table(path: &str, table: &Table, problems: &mut Problems<'_>) {
    for (key, value) in table {
        let here = join_key(path, key);
        if CREDENTIAL_KEYS.contains(&key.as_str()) && !matches!(value, Value::Table(_)) {
            if let Err(message) = env_reference(value) {
                problems.push(&here, message);
            }
            continue;
        }
        walk_value(&here, value, problems);
    }
}

fn walk_value(path: &str, value: &Value, problems: &mut Problems<'_>) {
    match value {
        Value::String(s) if embeds_credentials(s) => problems.push(
            path,
            "URLs must not embed credentials (`user:password@`); give the secret through an `env:` credential field",
        ),
        Value::Table(t) => walk_table(path, t, problems),
        Value::Array(items) => {
            for item in items {
                walk_value(path, item, problems);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognizes_urls_with_credentials() {
        assert!(embeds_credentials("https://user:pw@example.com/metrics"));
        assert!(embeds_credentials("http://token@10.0.0.1:9102"));
        assert!(!embeds_credentials("https://example.com/a@b"));
        assert!(!embeds_credentials("https://example.com/?mail=a@b"));
        assert!(!embeds_credentials("ops@example.com"));
        assert!(!embeds_credentials("SELECT '://x@y'"));
    }

    #[test]
    fn env_references_name_a_variable() {
        assert_eq!(
            env_reference(&Value::String("env:KEY_1".into())),
            Ok("KEY_1")
        );
        assert!(env_reference(&Value::String("env:1KEY".into())).is_err());
        assert!(env_reference(&Value::String("env:".into())).is_err());
        assert!(env_reference(&Value::String("hunter2hunter2".into())).is_err());
        assert!(env_reference(&Value::Integer(5)).is_err());
    }
}
