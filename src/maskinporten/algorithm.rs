//! [`Algorithm`]: the JWS signature algorithms this crate accepts.
//!
//! A leaf module: the token checks (`validate.rs`) and the key parsing (`jwk.rs`) both use it,
//! and it uses neither.

/// A JWS signature algorithm this crate accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
}

impl Algorithm {
    /// Parses the JOSE name (`RS256`, `RS384`, `RS512`), case-sensitively.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "RS256" => Some(Algorithm::RS256),
            "RS384" => Some(Algorithm::RS384),
            "RS512" => Some(Algorithm::RS512),
            _ => None,
        }
    }

    /// The JOSE name.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::RS256 => "RS256",
            Algorithm::RS384 => "RS384",
            Algorithm::RS512 => "RS512",
        }
    }

    /// This algorithm's bit in an allow-list bit set.
    pub(crate) fn bit(self) -> u8 {
        match self {
            Algorithm::RS256 => 1,
            Algorithm::RS384 => 2,
            Algorithm::RS512 => 4,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_bits_are_distinct() {
        let all = [Algorithm::RS256, Algorithm::RS384, Algorithm::RS512];
        for a in all {
            assert_eq!(Algorithm::from_name(a.name()), Some(a));
        }
        assert_eq!(all.iter().fold(0, |acc, a| acc | a.bit()), 0b111);
        for bad in ["rs256", "RS256 ", "HS256", "PS256", "none", ""] {
            assert_eq!(Algorithm::from_name(bad), None, "{bad:?}");
        }
    }
}
