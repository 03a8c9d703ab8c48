//! Secrets and bearer-token checks.
//!
//! A [`Secret`] never prints its value: `Debug` and `Display` show `<redacted>`, and it does
//! not implement `Serialize`, so it cannot leak into logs or API output by accident.
//! **Invariant:** the only way to read a secret is [`Secret::expose`], used where it is sent.

use axum::http::{HeaderMap, header};

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// Reads a secret from the environment variable `name`.
    pub fn from_env(name: &str) -> anyhow::Result<Secret> {
        match std::env::var(name) {
            Ok(value) if !value.is_empty() => Ok(Secret(value)),
            Ok(_) => anyhow::bail!("environment variable {name} is empty"),
            Err(_) => anyhow::bail!("environment variable {name} is not set"),
        }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// True when the request carries `Authorization: Bearer <token>` with the expected token.
pub fn bearer_matches(headers: &HeaderMap, expected: &Secret) -> bool {
    let Some(value) = headers.get(header::AUTHORIZATION).and_then(|value| value.to_str().ok()) else {
        return false;
    };
    let Some(token) = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")) else {
        return false;
    };
    constant_time_eq(token.trim().as_bytes(), expected.expose().as_bytes())
}

/// Compares without an early exit, so response timing does not reveal a token's prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let secret = Secret::new("R0UTING-KEY-123");
        assert_eq!(format!("{secret}"), "<redacted>");
        assert_eq!(format!("{secret:?}"), "<redacted>");
        assert!(!format!("{:?}", Some(&secret)).contains("R0UTING"));
    }

    #[test]
    fn bearer_tokens_must_match_exactly() {
        let secret = Secret::new("s3cret");
        let mut headers = HeaderMap::new();
        assert!(!bearer_matches(&headers, &secret));
        headers.insert(header::AUTHORIZATION, "Bearer s3cret".parse().expect("valid header"));
        assert!(bearer_matches(&headers, &secret));
        headers.insert(header::AUTHORIZATION, "Bearer s3cre".parse().expect("valid header"));
        assert!(!bearer_matches(&headers, &secret));
        headers.insert(header::AUTHORIZATION, "Basic s3cret".parse().expect("valid header"));
        assert!(!bearer_matches(&headers, &secret));
    }
}
