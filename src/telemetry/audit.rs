//! The audit trail: one `tracing` event per authorization outcome, on the target
//! [`TARGET`] (`altinn_systemuser::audit`).
//!
//! **The system-user layer** emits exactly one event at `INFO` for every request it answers,
//! allowed or refused, with these fields (absent when not known, for example no token fields
//! when the Maskinporten layer is missing):
//!
//! | field | value |
//! |---|---|
//! | `outcome` | `allowed` or `refused` |
//! | `reason` | `ok`, or the refusal's [slug](crate::reject::RejectionKind::slug) (`access-not-granted`, `invalid-party`, ...) |
//! | `system_user_id` | the system user's UUID |
//! | `system_user_org` | the organisation number of the system user's owner |
//! | `vendor_org` | the vendor (`consumer`): its organisation number, or the ISO 6523 id of a foreign one |
//! | `client_id` | the vendor's Maskinporten client |
//! | `jti` | the token's id |
//! | `issuer` | who vouched for the caller: `maskinporten` or `altinn` (a token from the exchange) |
//! | `resource`, `action` | what was asked of the PDP |
//! | `party` | an organisation number in clear; a person identifier never: `redacted`, or `hmac-sha256:` and 32 hex digits (the first 128 bits of HMAC-SHA256 under the key given to [`audit_party_key`](crate::systemuser::SystemUserLayerBuilder::audit_party_key)), so that one person's requests can be found together without the identifier being written |
//! | `decision_source` | `cache` (the decision cache), `pdp` (this request's own PDP call) or `shared` (an identical question's call in flight) |
//! | `pdp_ms` | for `pdp` and `shared`: how long this request waited for the decision, in milliseconds |
//!
//! The message is `authorization`.
//!
//! **The Maskinporten layer** emits an event for each refusal, with `outcome` (`refused`) and
//! `reason` only: nothing is read from a token that did not verify. It is at `DEBUG` by
//! default ([`refusal_log_level`](crate::maskinporten::MaskinportenLayerBuilder::refusal_log_level)),
//! so that a client sending garbage tokens cannot flood the logs. The message is
//! `token refused`. Requests it lets through are audited by the system-user layer.
//!
//! No event, and no span field, ever holds a token, a key, the subscription key or a
//! signature. Select the trail with a filter such as `altinn_systemuser::audit=info`.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::hmac;
use tracing::Level;

use crate::ConfigError;
use crate::maskinporten::MaskinportenToken;
use crate::org::{OrgId, Organisation, Party, PersonId};
use crate::pdp::{Action, DecisionSource, ResourceId};
use crate::reject::RejectionKind;

/// The `tracing` target of the audit events.
pub const TARGET: &str = "altinn_systemuser::audit";

/// The shortest key accepted for the party pseudonyms.
pub(crate) const MIN_PARTY_KEY_BYTES: usize = 32;

/// `outcome` and `reason` of an outcome.
pub(crate) fn outcome_fields(outcome: Result<(), RejectionKind>) -> (&'static str, &'static str) {
    match outcome {
        Ok(()) => ("allowed", "ok"),
        Err(kind) => ("refused", kind.slug()),
    }
}

/// The key persons are pseudonymised under (HMAC-SHA256). A secret: never shown.
#[derive(Clone)]
pub(crate) struct PartyKey(Arc<hmac::Key>);

impl PartyKey {
    /// At least 32 bytes, from a secret store (not a password).
    pub(crate) fn new(bytes: &[u8]) -> Result<Self, ConfigError> {
        if bytes.len() < MIN_PARTY_KEY_BYTES {
            return Err(ConfigError::new("audit_party_key", "at least 32 bytes of secret key material"));
        }
        Ok(PartyKey(Arc::new(hmac::Key::new(hmac::HMAC_SHA256, bytes))))
    }

    /// The pseudonym of `person`: the first 16 bytes of its HMAC.
    fn pseudonym(&self, person: &PersonId) -> [u8; 16] {
        let tag = hmac::sign(&self.0, person.as_str().as_bytes());
        let mut out = [0u8; 16];
        out.copy_from_slice(&tag.as_ref()[..16]);
        out
    }
}

impl fmt::Debug for PartyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// How a party is written in events and spans: an organisation number in clear, a person
/// `redacted` or pseudonymised.
pub(crate) struct PartyField<'a> {
    pub(crate) party: Party,
    pub(crate) key: Option<&'a PartyKey>,
}

impl fmt::Display for PartyField<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.party, self.key) {
            (Party::Organisation(o), _) => write!(f, "{o}"),
            (Party::Person(_), None) => f.write_str("redacted"),
            (Party::Person(p), Some(key)) => {
                f.write_str("hmac-sha256:")?;
                key.pseudonym(p).iter().try_for_each(|b| write!(f, "{b:02x}"))
            }
        }
    }
}

/// An organisation as the `vendor_org` field: the organisation number when Norwegian, the
/// ISO 6523 id otherwise.
pub(crate) struct OrgField<'a>(pub(crate) &'a Organisation);

impl fmt::Display for OrgField<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.id() {
            OrgId::Norwegian(n) => write!(f, "{n}"),
            _ => write!(f, "{}", self.0),
        }
    }
}

/// What the system-user layer knows about a request when it answers it.
#[derive(Default)]
pub(crate) struct Authorization<'a> {
    pub(crate) token: Option<&'a MaskinportenToken>,
    pub(crate) resource: Option<&'a ResourceId>,
    pub(crate) action: Option<&'a Action>,
    pub(crate) party: Option<Party>,
    pub(crate) source: Option<DecisionSource>,
    pub(crate) pdp_ms: Option<u64>,
}

/// The system-user layer's one event for a request. Its fields are only computed when the
/// event is enabled.
pub(crate) fn authorization(outcome: Result<(), RejectionKind>, a: &Authorization<'_>, key: Option<&PartyKey>) {
    let (outcome, reason) = outcome_fields(outcome);
    let su = a.token.and_then(MaskinportenToken::system_user);
    tracing::info!(
        target: TARGET,
        outcome,
        reason,
        system_user_id = su.map(|s| display(s.id())),
        system_user_org = su.map(|s| display(s.owner_org())),
        vendor_org = a.token.and_then(MaskinportenToken::consumer).map(|o| display(OrgField(o))),
        client_id = a.token.and_then(MaskinportenToken::client_id),
        jti = a.token.and_then(MaskinportenToken::jti),
        issuer = a.token.map(|t| t.token_issuer().as_str()),
        resource = a.resource.map(ResourceId::as_str),
        action = a.action.map(Action::as_str),
        party = a.party.map(|party| display(PartyField { party, key })),
        decision_source = a.source.map(DecisionSource::as_str),
        pdp_ms = a.pdp_ms,
        "authorization"
    );
}

/// The Maskinporten layer's event for a refusal: the reason only, at `level`.
pub(crate) fn token_refused(level: Level, kind: RejectionKind) {
    let reason = kind.slug();
    match level {
        Level::ERROR => tracing::error!(target: TARGET, outcome = "refused", reason, "token refused"),
        Level::WARN => tracing::warn!(target: TARGET, outcome = "refused", reason, "token refused"),
        Level::INFO => tracing::info!(target: TARGET, outcome = "refused", reason, "token refused"),
        Level::DEBUG => tracing::debug!(target: TARGET, outcome = "refused", reason, "token refused"),
        _ => tracing::trace!(target: TARGET, outcome = "refused", reason, "token refused"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::org::OrgNumber;

    const PERSON: &str = "01010012356";

    #[test]
    fn a_person_is_never_written_in_clear() {
        let person = Party::parse(PERSON).unwrap();
        assert_eq!(PartyField { party: person, key: None }.to_string(), "redacted");
        let key = PartyKey::new(&[7u8; 32]).unwrap();
        let hashed = PartyField {
            party: person,
            key: Some(&key),
        }
        .to_string();
        // An independent oracle: HMAC-SHA256 of the digits under the same key, first 16 bytes.
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &[7u8; 32]), PERSON.as_bytes());
        let hex: String = tag.as_ref()[..16].iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hashed, format!("hmac-sha256:{hex}"));
        assert!(!hashed.contains(PERSON));
        // Stable for one key, different under another.
        assert_eq!(
            PartyField {
                party: person,
                key: Some(&key)
            }
            .to_string(),
            hashed
        );
        let other = PartyKey::new(&[8u8; 32]).unwrap();
        assert_ne!(
            PartyField {
                party: person,
                key: Some(&other)
            }
            .to_string(),
            hashed
        );
    }

    #[test]
    fn an_organisation_is_written_in_clear() {
        let org = Party::Organisation(OrgNumber::parse("923609016").unwrap());
        let key = PartyKey::new(&[7u8; 32]).unwrap();
        assert_eq!(PartyField { party: org, key: None }.to_string(), "923609016");
        assert_eq!(
            PartyField {
                party: org,
                key: Some(&key)
            }
            .to_string(),
            "923609016"
        );
        let foreign = Organisation::from_iso6523("iso6523-actorid-upis", "0088:5790000436057").unwrap();
        assert_eq!(OrgField(&foreign).to_string(), "0088:5790000436057");
        let norwegian = Organisation::norwegian(OrgNumber::parse("991825827").unwrap());
        assert_eq!(OrgField(&norwegian).to_string(), "991825827");
    }

    #[test]
    fn a_short_key_is_refused_and_a_key_is_never_shown() {
        let e = PartyKey::new(&[1u8; 31]).unwrap_err();
        assert_eq!(e.field(), "audit_party_key");
        let key = PartyKey::new(b"0123456789abcdef0123456789abcdef").unwrap();
        assert_eq!(format!("{key:?}"), "<redacted>");
    }
}
