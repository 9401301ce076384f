//! What is asked of the PDP: a system user, an action, a resource and a party.

use smol_str::SmolStr;
use std::fmt;
use std::time::SystemTime;

use uuid::Uuid;

use crate::org::Party;

/// Why a resource id or an action is not acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum TargetError {
    /// The resource id does not match `^[a-z0-9_-]{4,100}$`.
    #[error("a resource id is 4 to 100 characters of [a-z0-9_-]")]
    InvalidResource,
    /// The action is not 1 to 64 characters of `[a-z0-9_:-]`.
    #[error("an action is 1 to 64 characters of [a-z0-9_:-]")]
    InvalidAction,
}

/// An id from Altinn's resource registry, for example `kravogbetaling`.
///
/// Valid ids match `^[a-z0-9_-]{4,}$` (at most 100 characters here). Cloning is cheap.
///
/// ```
/// use altinn_systemuser::pdp::ResourceId;
/// let r = ResourceId::new("kravogbetaling").unwrap();
/// assert_eq!(r.as_str(), "kravogbetaling");
/// assert!(ResourceId::new("Krav").is_err());
/// assert!(ResourceId::new("abc").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceId(SmolStr);

impl ResourceId {
    /// The longest id accepted.
    pub const MAX_LEN: usize = 100;

    /// Checks `id` and wraps it.
    pub fn new(id: &str) -> Result<Self, TargetError> {
        let ok = (4..=Self::MAX_LEN).contains(&id.len()) && id.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'));
        if ok {
            Ok(ResourceId(SmolStr::new(id)))
        } else {
            Err(TargetError::InvalidResource)
        }
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for ResourceId {
    type Err = TargetError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ResourceId({})", self.0)
    }
}

/// The XACML action asked about (`urn:oasis:names:tc:xacml:1.0:action:action-id`), for
/// example `read`.
///
/// Valid actions are 1 to 64 characters of `[a-z0-9_:-]`. Cloning is cheap.
///
/// ```
/// use altinn_systemuser::pdp::Action;
/// assert_eq!(Action::read().as_str(), "read");
/// assert_eq!(Action::new("sign").unwrap().as_str(), "sign");
/// assert!(Action::new("Read").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Action(SmolStr);

macro_rules! well_known_actions {
    ($($(#[$doc:meta])* $name:ident = $value:literal;)*) => {
        impl Action {
            $(
                $(#[$doc])*
                pub fn $name() -> Self {
                    Action(SmolStr::new_static($value))
                }
            )*
        }
    };
}

well_known_actions! {
    /// `read`: the usual action for `GET` and `HEAD`.
    read = "read";
    /// `write`: the usual action for `POST`, `PUT` and `PATCH`.
    write = "write";
    /// `delete`: the usual action for `DELETE`.
    delete = "delete";
}

impl Action {
    /// The longest action accepted.
    pub const MAX_LEN: usize = 64;

    /// Checks `action` and wraps it.
    pub fn new(action: &str) -> Result<Self, TargetError> {
        let ok = (1..=Self::MAX_LEN).contains(&action.len())
            && action.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b':' | b'-'));
        if ok {
            Ok(Action(SmolStr::new(action)))
        } else {
            Err(TargetError::InvalidAction)
        }
    }

    /// The action.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for Action {
    type Err = TargetError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Action({})", self.0)
    }
}

/// What a decision is about: exactly (system user, action, resource, party).
///
/// The decision cache's key and what a multi-request answer is matched by. Cheap to clone: a
/// UUID, two short strings (kept inline, or shared when long: no reference count touched for
/// the usual ones) and a `Copy` party.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct DecisionKey {
    pub(crate) subject: Uuid,
    pub(crate) action: Action,
    pub(crate) resource: ResourceId,
    pub(crate) party: Party,
}

impl DecisionKey {
    /// The question `req` asks.
    pub(crate) fn of(req: &DecisionRequest) -> Self {
        req.key.clone()
    }
}

/// One question for the PDP: may system user `subject` do `action` on `resource` for `party`?
///
/// ```
/// use altinn_systemuser::pdp::{Action, DecisionRequest, ResourceId};
/// use altinn_systemuser::org::{OrgNumber, Party};
/// use std::time::{Duration, SystemTime};
///
/// let until = SystemTime::now() + Duration::from_secs(120);
/// let req = DecisionRequest::new(
///     "a545ca29-7fb8-4810-a2f2-0be171cb2a26".parse().unwrap(),
///     Action::read(),
///     ResourceId::new("kravogbetaling").unwrap(),
///     Party::Organisation("923609016".parse::<OrgNumber>().unwrap()),
/// )
/// .with_valid_until(until);
/// assert_eq!(req.action(), &Action::read());
/// assert_eq!(req.valid_until(), Some(until));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct DecisionRequest {
    /// The question; the cache looks it up as it is, without building a key.
    key: DecisionKey,
    valid_until: Option<SystemTime>,
}

impl DecisionRequest {
    /// May system user `subject` do `action` on `resource` for `party`? Without a
    /// [`valid_until`](Self::valid_until) bound.
    pub fn new(subject: Uuid, action: Action, resource: ResourceId, party: Party) -> Self {
        DecisionRequest {
            key: DecisionKey {
                subject,
                action,
                resource,
                party,
            },
            valid_until: None,
        }
    }

    /// Bounds how long a `Permit` for this request may be cached (normally the token's `exp`).
    pub fn with_valid_until(mut self, until: SystemTime) -> Self {
        self.valid_until = Some(until);
        self
    }

    /// The system user's id (`urn:altinn:systemuser:uuid`).
    pub fn subject(&self) -> Uuid {
        self.key.subject
    }

    /// What the system user wants to do.
    pub fn action(&self) -> &Action {
        &self.key.action
    }

    /// The resource in Altinn's resource registry.
    pub fn resource(&self) -> &ResourceId {
        &self.key.resource
    }

    /// The organisation or person the system user acts for.
    pub fn party(&self) -> Party {
        self.key.party
    }

    /// A cached `Permit` never outlives this instant; normally the `exp` of the caller's token.
    pub fn valid_until(&self) -> Option<SystemTime> {
        self.valid_until
    }

    /// The question, borrowed: what the decision cache is looked up with.
    pub(crate) fn key(&self) -> &DecisionKey {
        &self.key
    }

    /// The question, owned.
    pub(crate) fn into_key(self) -> DecisionKey {
        self.key
    }
}

impl fmt::Debug for DecisionRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The shape the derived `Debug` had when these were public fields.
        f.debug_struct("DecisionRequest")
            .field("subject", &self.key.subject)
            .field("action", &self.key.action)
            .field("resource", &self.key.resource)
            .field("party", &self.key.party)
            .field("valid_until", &self.valid_until)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_ids() {
        for ok in [
            "kravogbetaling",
            "ttd-externalpdp-resource1",
            "app_ttd_a",
            "abcd",
            "a".repeat(100).as_str(),
        ] {
            assert_eq!(ResourceId::new(ok).unwrap().as_str(), ok);
        }
        for bad in ["", "abc", "Krav", "krav og", "krav/1", "kråv", "krav.x", "a".repeat(101).as_str()] {
            assert_eq!(ResourceId::new(bad), Err(TargetError::InvalidResource), "{bad}");
        }
    }

    #[test]
    fn actions() {
        assert_eq!(Action::read().as_str(), "read");
        assert_eq!(Action::write().as_str(), "write");
        assert_eq!(Action::delete().as_str(), "delete");
        assert_eq!(Action::read(), Action::new("read").unwrap());
        for ok in ["a", "sign", "instantiate", "urn:x:y-z_1", "a".repeat(64).as_str()] {
            assert!(Action::new(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Read", "read ", "re/ad", "læs", "a".repeat(65).as_str()] {
            assert_eq!(Action::new(bad), Err(TargetError::InvalidAction), "{bad}");
        }
    }

    const SU: &str = "47caea5b-a80b-4343-b1d3-31eb523a4e28";

    fn org(s: &str) -> Party {
        Party::Organisation(s.parse().unwrap())
    }

    fn question(subject: &str, action: Action, resource: &str, party: Party) -> DecisionRequest {
        DecisionRequest::new(subject.parse().unwrap(), action, ResourceId::new(resource).unwrap(), party)
    }

    fn hash(k: &DecisionKey) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        k.hash(&mut h);
        h.finish()
    }

    #[test]
    fn a_request_gives_back_what_it_asks() {
        let until = SystemTime::now();
        let req = question(SU, Action::write(), "resource-a", org("910459880"));
        assert_eq!(req.subject(), SU.parse::<Uuid>().unwrap());
        assert_eq!(req.action(), &Action::write());
        assert_eq!(req.resource().as_str(), "resource-a");
        assert_eq!(req.party(), org("910459880"));
        assert_eq!(req.valid_until(), None);
        assert_eq!(req.clone().with_valid_until(until).valid_until(), Some(until));
        let debug = format!("{req:?}");
        for part in [SU, "Action(write)", "ResourceId(resource-a)", "valid_until: None"] {
            assert!(debug.contains(part), "{debug}");
        }
    }

    #[test]
    fn keys_are_exactly_the_four_parts() {
        let base = question(SU, Action::read(), "resource-a", org("910459880"));
        let k = DecisionKey::of(&base);
        // valid_until is not part of the key.
        let later = base.clone().with_valid_until(SystemTime::now());
        assert_eq!(DecisionKey::of(&later), k);
        assert_eq!(hash(&DecisionKey::of(&later)), hash(&k));
        // Each part is.
        for other in [
            question(
                "a545ca29-7fb8-4810-a2f2-0be171cb2a26",
                Action::read(),
                "resource-a",
                org("910459880"),
            ),
            question(SU, Action::write(), "resource-a", org("910459880")),
            question(SU, Action::read(), "resource-b", org("910459880")),
            question(SU, Action::read(), "resource-a", org("923609016")),
            question(SU, Action::read(), "resource-a", Party::Person("01010012356".parse().unwrap())),
        ] {
            assert_ne!(DecisionKey::of(&other), k, "{other:?}");
        }
        // Separately built equal parts make equal keys (no pointer identity).
        let rebuilt = DecisionKey {
            subject: k.subject,
            action: Action::new("read").unwrap(),
            resource: ResourceId::new("resource-a").unwrap(),
            party: k.party,
        };
        assert_eq!(rebuilt, k);
        assert_eq!(hash(&rebuilt), hash(&k));
    }
}
