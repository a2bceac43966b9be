//! Input validation shared by the API handlers. Each function returns the normalised value or
//! a 400 (422 for a password the rule refuses) naming the field.

use flo2_core::Secret;

use crate::error::ApiError;

/// Longest display name (teams, keys, organizations).
pub const MAX_NAME_CHARS: usize = 100;

/// A display name: trimmed, 1 to 100 characters, no control characters.
pub fn name(field: &str, value: &str) -> Result<String, ApiError> {
    let trimmed = value.trim();
    let chars = trimmed.chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS {
        return Err(ApiError::invalid_field(
            field,
            format!("`{field}` must be 1 to {MAX_NAME_CHARS} characters"),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(ApiError::invalid_field(
            field,
            format!("`{field}` must not contain control characters"),
        ));
    }
    Ok(trimmed.to_owned())
}

/// An email address, trimmed and lowercased. Deliberately loose: one `@`, something on each
/// side, no spaces; the mailbox is never contacted.
pub fn email(value: &str) -> Result<String, ApiError> {
    let normalised = value.trim().to_lowercase();
    let valid = normalised.len() <= 254
        && !normalised
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        && matches!(normalised.split_once('@'), Some((local, domain))
            if !local.is_empty() && !domain.is_empty() && !domain.contains('@'));
    if valid {
        Ok(normalised)
    } else {
        Err(ApiError::invalid_field(
            "email",
            "`email` is not a valid email address",
        ))
    }
}

/// A password that passes flo2's rule ([`flo2_vault::password_rules`]); `account` holds the
/// account's email and organization name(s). Refusals are 422 naming `field`.
pub fn password(field: &str, value: String, account: &[&str]) -> Result<Secret<String>, ApiError> {
    match flo2_vault::password_rules::check(&value, account) {
        Ok(()) => Ok(Secret::new(value)),
        Err(refused) => Err(ApiError::refused_field(
            field,
            format!("`{field}` {refused}"),
        )),
    }
}

/// A provider API key: 1 to 4096 printable characters without spaces.
pub fn api_key(value: String) -> Result<Secret<String>, ApiError> {
    let trimmed = value.trim();
    if trimmed.is_empty()
        || trimmed.len() > 4096
        || trimmed.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(ApiError::invalid_field(
            "api_key",
            "`api_key` must be 1 to 4096 printable characters without spaces",
        ));
    }
    Ok(Secret::new(trimmed.to_owned()))
}

/// A provider base URL: absolute `http` or `https`, with a host, no credentials, no query or
/// fragment. A trailing slash is removed.
pub fn base_url(value: &str) -> Result<String, ApiError> {
    let trimmed = value.trim().trim_end_matches('/');
    let bad = || {
        ApiError::invalid_field(
            "base_url",
            "`base_url` must be an absolute http(s) URL such as https://llm.example.com/v1",
        )
    };
    if trimmed.len() > 2048 {
        return Err(bad());
    }
    let uri: http::Uri = trimmed.parse().map_err(|_| bad())?;
    let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
    let authority = uri.authority().ok_or_else(bad)?;
    if !scheme_ok
        || authority.host().is_empty()
        || authority.as_str().contains('@')
        || uri.query().is_some()
        || trimmed.contains('#')
    {
        return Err(bad());
    }
    Ok(trimmed.to_owned())
}

/// The last four characters of a secret, for listings.
pub fn hint(secret: &Secret<String>) -> String {
    let chars: Vec<char> = secret.expose().chars().collect();
    if chars.len() < 12 {
        // Too short to reveal anything safely.
        return "…".to_owned();
    }
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(name("name", "  ops ").unwrap(), "ops");
        assert!(name("name", "   ").is_err());
        assert_eq!(name("new_team", "").unwrap_err().field(), Some("new_team"));
        assert!(name("name", &"x".repeat(101)).is_err());
        assert!(name("name", "a\u{0}b").is_err());
        assert_eq!(name("name", "Équipe 🚀").unwrap(), "Équipe 🚀");
    }

    #[test]
    fn emails_are_normalised() {
        assert_eq!(email(" Ada@Example.COM ").unwrap(), "ada@example.com");
        for bad in ["", "ada", "@x", "a@", "a b@c", "a@b@c"] {
            assert_eq!(email(bad).unwrap_err().field(), Some("email"), "{bad}");
        }
    }

    #[test]
    fn base_urls_must_be_plain_http() {
        assert_eq!(
            base_url("https://x.example/v1/").unwrap(),
            "https://x.example/v1"
        );
        assert_eq!(
            base_url("http://127.0.0.1:8000").unwrap(),
            "http://127.0.0.1:8000"
        );
        for bad in [
            "ftp://x",
            "x.example",
            "https://u:p@x.example",
            "https://x.example?a=1",
            "https://x#f",
            "/v1",
        ] {
            assert_eq!(
                base_url(bad).unwrap_err().field(),
                Some("base_url"),
                "{bad}"
            );
        }
    }

    #[test]
    fn hints_show_only_the_tail() {
        assert_eq!(hint(&Secret::new("sk-proj-abcdefgh1234".into())), "…1234");
        assert_eq!(hint(&Secret::new("short".into())), "…");
    }
}
