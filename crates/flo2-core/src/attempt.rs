//! What an upstream call was for and, when it failed, why: the vocabulary of usage records,
//! attempt traces and health. Each is stored and reported by its stable lowercase name
//! (`as_str`), which is the only place such a name is spelled.
//!
//! Adding a role or a failure kind is one line in the list below it.

use std::fmt;
use std::str::FromStr;

/// An enum of unit variants, each with its stable stored name: `as_str`, `ALL`, `Display`,
/// `FromStr`, and serde as that name.
macro_rules! named {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident { $( $(#[$vmeta:meta])* $variant:ident => $text:literal, )+ }
        unknown: $unknown:ident
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        $vis enum $name { $( $(#[$vmeta])* $variant, )+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable name stored in usage records and shown in reports.
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text,)+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = $unknown;
            fn from_str(s: &str) -> Result<Self, $unknown> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| $unknown(s.to_owned()))
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }

        /// A name that is none of this type's values.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $unknown(pub String);

        impl fmt::Display for $unknown {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "unknown {}: {:?}", stringify!($name), self.0)
            }
        }

        impl std::error::Error for $unknown {}
    };
}

named! {
    /// What an upstream call was for, within its request (`attempt_role` of a usage record).
    pub enum AttemptRole {
        /// The request's first attempt.
        Primary => "primary",
        /// A retry of the same target or the next target of a fallback chain.
        Fallback => "fallback",
        /// A participant of a race (winner or loser).
        Race => "race",
        /// The dashboard's test of a provider key.
        Test => "test",
        /// An experiment's judge scoring a sampled answer.
        Judge => "judge",
        /// A pairwise experiment's background call of the control arm.
        Shadow => "shadow",
    }
    unknown: UnknownAttemptRole
}

impl AttemptRole {
    /// The role of attempt `number` (from 1) of a fallback chain.
    pub fn in_chain(number: u32) -> Self {
        if number <= 1 {
            AttemptRole::Primary
        } else {
            AttemptRole::Fallback
        }
    }
}

named! {
    /// Why an upstream call did not end in an answer (`error_kind` of a usage record).
    pub enum FailureKind {
        /// The target cannot express the request (a feature its API lacks); nothing was sent.
        Unsupported => "unsupported",
        /// The connection to the upstream could not be made (or timed out connecting).
        Unreachable => "upstream_unreachable",
        /// The upstream did not answer within the attempt's time.
        Timeout => "timeout",
        /// The upstream answered with an error status.
        UpstreamError => "upstream_error",
        /// The answer's body broke off or was too large.
        UpstreamBody => "upstream_body",
        /// The answer was not the JSON its API promises.
        UpstreamMalformed => "upstream_malformed",
        /// A stream failed before its first token (nothing reached the caller).
        StreamFailedEarly => "stream_failed_early",
        /// A stream broke off after its first token.
        StreamInterrupted => "stream_interrupted",
        /// A stream went quiet for longer than the idle limit after its first token.
        StreamIdleTimeout => "stream_idle_timeout",
        /// The caller went away before the call finished.
        ClientClosed => "client_closed",
        /// A race participant dropped because another won.
        RaceCancelled => "race_cancelled",
    }
    unknown: UnknownFailureKind
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        for role in AttemptRole::ALL {
            assert_eq!(role.as_str().parse::<AttemptRole>(), Ok(*role));
            let json = serde_json::to_string(role).unwrap_or_default();
            assert_eq!(json, format!("\"{role}\""));
        }
        for kind in FailureKind::ALL {
            assert_eq!(kind.as_str().parse::<FailureKind>(), Ok(*kind));
        }
        let mut names: Vec<_> = FailureKind::ALL.iter().map(|k| k.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), FailureKind::ALL.len());
        assert!("cache_hit".parse::<AttemptRole>().is_err());
    }

    #[test]
    fn a_chain_starts_primary() {
        assert_eq!(AttemptRole::in_chain(1), AttemptRole::Primary);
        assert_eq!(AttemptRole::in_chain(2), AttemptRole::Fallback);
    }
}
