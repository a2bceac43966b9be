//! Which passwords flo2 accepts (OWASP ASVS 4.0 level 2, V2.1): at least [`MIN_LEN`] characters
//! and at most [`MAX_LEN`], any Unicode (spaces included, nothing truncated, no composition
//! rules), not guessable, and not the account's own email or organization name.
//!
//! "Guessable" is decided by zxcvbn (Dropbox's estimator, the `zxcvbn` crate): it matches the
//! password against its frequency lists (about 30,000 common and breached passwords, English
//! words, names), keyboard patterns, dates, repeats and sequences, and against the account's own
//! details, and estimates how many guesses an attacker needs. Below [`MIN_SCORE`] the password
//! is refused with zxcvbn's own explanation.

use zxcvbn::Score;

use crate::password::{MAX_LEN, MIN_LEN};

/// The weakest zxcvbn score accepted: 3 means about 10^8 to 10^10 guesses, out of reach of an
/// online attack through the login throttle, and slow offline against argon2id.
pub const MIN_SCORE: Score = Score::Three;

/// Why a password is refused; the message is safe to show (it never repeats the password).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordRefused {
    /// Fewer than [`MIN_LEN`] characters.
    #[error("must be at least {MIN_LEN} characters")]
    TooShort,
    /// More than [`MAX_LEN`] characters.
    #[error("must be at most {MAX_LEN} characters")]
    TooLong,
    /// The same as the account's email or organization name (ignoring case).
    #[error("must not be your email or organization name")]
    AccountDetail,
    /// Common, breached or otherwise quick to guess; `reason` is zxcvbn's explanation.
    #[error("is too easy to guess{reason}; use a longer phrase of unrelated words")]
    Guessable {
        /// Zxcvbn's warning, as ` (...)`, or empty.
        reason: String,
    },
}

/// Checks `password` against the rule; `account` holds what the account is known by (its
/// email, its organization's name): the password may not be one of them, and zxcvbn counts
/// their words as known to the attacker.
pub fn check(password: &str, account: &[&str]) -> Result<(), PasswordRefused> {
    let chars = password.chars().count();
    if chars < MIN_LEN {
        return Err(PasswordRefused::TooShort);
    }
    if chars > MAX_LEN {
        return Err(PasswordRefused::TooLong);
    }
    let folded = password.trim().to_lowercase();
    let mut details: Vec<&str> = Vec::with_capacity(account.len() * 2);
    for detail in account.iter().map(|d| d.trim()).filter(|d| !d.is_empty()) {
        if detail.to_lowercase() == folded {
            return Err(PasswordRefused::AccountDetail);
        }
        details.push(detail);
        // Each word of a name, and an email's mailbox and domain words, are as public as the
        // whole, and a password made of them as guessable.
        details.extend(
            detail
                .split(|c: char| !c.is_alphanumeric())
                .filter(|w| w.chars().count() >= 3),
        );
    }
    let estimate = zxcvbn::zxcvbn(password, &details);
    if estimate.score() >= MIN_SCORE {
        return Ok(());
    }
    let reason = estimate
        .feedback()
        .and_then(zxcvbn::feedback::Feedback::warning)
        .map(|w| format!(" ({})", w.to_string().trim_end_matches('.').to_lowercase()))
        .unwrap_or_default();
    Err(PasswordRefused::Guessable { reason })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCOUNT: &[&str] = &["ada@example.com", "Acme Widgets"];

    #[test]
    fn long_unrelated_phrases_pass_in_any_script() {
        for ok in [
            "correct horse battery staple",
            // What the test suites, the README and the benchmark use.
            "a long passphrase",
            "a long benchmark passphrase",
            "a completely new one",
            "orbit velvet tangerine quarry",
            "ünïcødé pässwörd wïth späces",
            "日本語のパスワードはとても長い",
            "Kz8#qW2mVt9@xLp4Rb7&nJc3Yh6!fGd5Ts1%eQa0UiOo",
        ] {
            assert_eq!(check(ok, ACCOUNT), Ok(()), "{ok}");
        }
    }

    #[test]
    fn length_is_counted_in_characters() {
        assert_eq!(check("short", ACCOUNT), Err(PasswordRefused::TooShort));
        // 11 characters of 2 bytes each: 22 bytes, still too short.
        assert_eq!(
            check(&"é".repeat(11), ACCOUNT),
            Err(PasswordRefused::TooShort)
        );
        assert_eq!(
            check(&"x".repeat(MAX_LEN + 1), ACCOUNT),
            Err(PasswordRefused::TooLong)
        );
    }

    #[test]
    fn common_and_patterned_passwords_are_refused() {
        for weak in [
            "password1234",
            "123456789012",
            "qwertyuiopasdf",
            "iloveyou1234",
            "aaaaaaaaaaaa",
            "abcdefghijklmnop",
            "Password123!",
        ] {
            assert!(
                matches!(check(weak, ACCOUNT), Err(PasswordRefused::Guessable { .. })),
                "{weak} should be refused"
            );
        }
    }

    #[test]
    fn the_account_details_are_refused_in_any_case() {
        assert_eq!(
            check("ADA@example.com", ACCOUNT),
            Err(PasswordRefused::AccountDetail)
        );
        assert_eq!(
            check("acme widgets", ACCOUNT),
            Err(PasswordRefused::AccountDetail)
        );
        assert_eq!(
            check("  Acme Widgets ", ACCOUNT),
            Err(PasswordRefused::AccountDetail)
        );
    }

    #[test]
    fn messages_never_repeat_the_password() {
        let err = check("password1234", ACCOUNT).unwrap_err().to_string();
        assert!(!err.contains("password1234"), "{err}");
        assert!(err.starts_with("is too easy to guess"), "{err}");
    }
}
