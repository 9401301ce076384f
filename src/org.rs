//! Norwegian organisation numbers, person identifiers and ISO 6523 organisation identifiers.
//!
//! Maskinporten writes organisations as `{"authority": "iso6523-actorid-upis", "ID": "0192:<orgno>"}`.
//! Only the ICD `0192` (the Norwegian Enhetsregisteret) is used today; other ICDs are kept as
//! [`OrgId::Other`] so a token that carries one is still readable, but they are never asked about
//! in a PDP request.
//!
//! # Two parsers: lenient for tokens, canonical for requests
//!
//! A party has one canonical spelling: nine ASCII digits for an organisation, eleven for a
//! person. Tokens write organisations in the ISO 6523 form `0192:<nine digits>`, so the parsers
//! used for token claims ([`OrgNumber::parse`], [`Party::parse`], `FromStr`) accept that form
//! too. A party taken from a request (a path segment or a header) is read with the canonical
//! parsers ([`OrgNumber::parse_canonical`], [`Party::parse_canonical`]), which accept nothing
//! else: no `0192:` prefix, no whitespace, no sign, no percent-encoding, no non-ASCII digits.
//! The string the PDP is asked about is then the very string the handler sees.
//!
//! ```
//! use altinn_systemuser::org::{OrgNumber, Party};
//!
//! // What a route such as `/krav/{orgnr}` carries: nine digits (with a valid check digit) are
//! // an organisation, eleven a person.
//! let party = Party::parse_canonical("923609016").unwrap();
//! assert_eq!(party, Party::Organisation("923609016".parse::<OrgNumber>().unwrap()));
//! assert!(Party::parse_canonical("923609017").is_err()); // wrong check digit
//! assert!(Party::parse_canonical("92360901").is_err()); // eight digits
//!
//! // A token's ISO 6523 form is read by the lenient parser only.
//! assert_eq!(Party::parse("0192:923609016").unwrap(), party);
//! assert!(Party::parse_canonical("0192:923609016").is_err());
//! ```

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

/// The ISO 6523 authority Maskinporten writes for organisations.
pub const ISO6523_AUTHORITY: &str = "iso6523-actorid-upis";

/// A Norwegian organisation number: nine digits with a valid mod-11 check digit.
///
/// ```
/// use altinn_systemuser::org::OrgNumber;
/// let org: OrgNumber = "310702641".parse().unwrap();
/// assert_eq!(org.to_string(), "310702641");
/// assert!("310702642".parse::<OrgNumber>().is_err()); // wrong check digit
/// assert_eq!("0192:310702641".parse::<OrgNumber>().unwrap(), org); // ISO 6523 form accepted
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrgNumber(u32);

/// Why a string is not a valid organisation number or person identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentifierError {
    /// Not the right number of ASCII digits.
    #[error("expected {0} digits")]
    WrongLength(usize),
    /// The check digit does not match.
    #[error("check digit does not match")]
    CheckDigit,
}

const ORG_WEIGHTS: [u32; 8] = [3, 2, 7, 6, 5, 4, 3, 2];

fn digits<const N: usize>(s: &str) -> Result<[u8; N], IdentifierError> {
    let b = s.as_bytes();
    if b.len() != N || !b.iter().all(u8::is_ascii_digit) {
        return Err(IdentifierError::WrongLength(N));
    }
    let mut out = [0u8; N];
    for (o, c) in out.iter_mut().zip(b) {
        *o = c - b'0';
    }
    Ok(out)
}

fn mod11(digits: &[u8], weights: &[u32]) -> Option<u8> {
    let sum: u32 = digits.iter().zip(weights).map(|(d, w)| u32::from(*d) * w).sum();
    match 11 - (sum % 11) {
        11 => Some(0),
        10 => None,
        c => Some(c as u8),
    }
}

impl OrgNumber {
    /// Parses nine digits, or the ISO 6523 form `0192:<nine digits>`, checking the mod-11 digit.
    ///
    /// Lenient, for token claims. For a number taken from a request use
    /// [`parse_canonical`](Self::parse_canonical).
    pub fn parse(s: &str) -> Result<Self, IdentifierError> {
        Self::parse_canonical(s.strip_prefix("0192:").unwrap_or(s))
    }

    /// Parses exactly nine ASCII digits with a valid mod-11 check digit, and nothing else: the
    /// canonical spelling, the one [`Display`](fmt::Display) writes.
    ///
    /// For a number taken from a request (path, header), so that the number checked is the
    /// string the handler sees.
    ///
    /// ```
    /// use altinn_systemuser::org::OrgNumber;
    /// let org = OrgNumber::parse_canonical("310702641").unwrap();
    /// assert_eq!(org.to_string(), "310702641");
    /// for other in ["0192:310702641", " 310702641", "310702641 ", "+310702641", "%33310702641", "３10702641"] {
    ///     assert!(OrgNumber::parse_canonical(other).is_err(), "{other}");
    /// }
    /// ```
    pub fn parse_canonical(s: &str) -> Result<Self, IdentifierError> {
        let d = digits::<9>(s)?;
        if mod11(&d[..8], &ORG_WEIGHTS) != Some(d[8]) {
            return Err(IdentifierError::CheckDigit);
        }
        Ok(OrgNumber(d.iter().fold(0u32, |acc, x| acc * 10 + u32::from(*x))))
    }

    /// The number as nine digits, as the PDP wants it (no `0192:` prefix).
    pub fn as_u32(&self) -> u32 {
        self.0
    }
}

impl FromStr for OrgNumber {
    type Err = IdentifierError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for OrgNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:09}", self.0)
    }
}

impl fmt::Debug for OrgNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OrgNumber({:09})", self.0)
    }
}

impl serde::Serialize for OrgNumber {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A Norwegian national identity number (fødselsnummer or D-number): eleven digits with two
/// mod-11 check digits.
///
/// This is personal data. Its `Debug` output is redacted and it is never logged; `Display`
/// prints the digits (it is what the PDP must be sent), so only format it where you must.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PersonId([u8; 11]);

impl PersonId {
    /// Parses exactly eleven ASCII digits and checks both check digits. There is no other
    /// spelling, so this parser is canonical: it serves token claims and requests alike.
    pub fn parse(s: &str) -> Result<Self, IdentifierError> {
        let d = digits::<11>(s)?;
        let k1 = mod11(&d[..9], &[3, 7, 6, 1, 8, 9, 4, 5, 2]);
        let k2 = mod11(&d[..10], &[5, 4, 3, 2, 7, 6, 5, 4, 3, 2]);
        if k1 != Some(d[9]) || k2 != Some(d[10]) {
            return Err(IdentifierError::CheckDigit);
        }
        let mut out = [0u8; 11];
        for (o, c) in out.iter_mut().zip(s.as_bytes()) {
            *o = *c;
        }
        Ok(PersonId(out))
    }

    /// The eleven digits.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits are ever stored.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl FromStr for PersonId {
    type Err = IdentifierError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for PersonId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for PersonId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PersonId(<redacted>)")
    }
}

/// The identifier part of an ISO 6523 organisation identifier.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum OrgId {
    /// `0192:<orgno>`: a Norwegian organisation with a valid organisation number.
    Norwegian(OrgNumber),
    /// Any other ICD, kept as written (for example `0088:...`).
    Other(String),
}

/// An organisation as Maskinporten writes it: `{"authority": ..., "ID": "0192:<orgno>"}`.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Organisation {
    /// Borrowed for the standard authority (every Maskinporten token), so that building one
    /// from a token does not allocate for it.
    authority: Cow<'static, str>,
    id: OrgId,
}

impl Organisation {
    /// Builds an organisation from the `authority` and `ID` members of a token.
    ///
    /// `0192:` identifiers must carry a valid organisation number; other ICDs of the
    /// `NNNN:value` form are kept as [`OrgId::Other`]. Anything else is an error.
    pub fn from_iso6523(authority: &str, id: &str) -> Result<Self, IdentifierError> {
        let id = if let Some(num) = id.strip_prefix("0192:") {
            // Nine digits after the one prefix: the lenient parser would take a second `0192:`.
            OrgId::Norwegian(OrgNumber::parse_canonical(num)?)
        } else {
            let (icd, rest) = id.split_once(':').ok_or(IdentifierError::WrongLength(9))?;
            if icd.len() != 4 || !icd.bytes().all(|b| b.is_ascii_digit()) || rest.is_empty() {
                return Err(IdentifierError::WrongLength(9));
            }
            OrgId::Other(id.to_owned())
        };
        Ok(Organisation {
            authority: if authority == ISO6523_AUTHORITY {
                Cow::Borrowed(ISO6523_AUTHORITY)
            } else {
                Cow::Owned(authority.to_owned())
            },
            id,
        })
    }

    /// A Norwegian organisation (`0192:`) with the standard authority.
    pub fn norwegian(org: OrgNumber) -> Self {
        Organisation {
            authority: Cow::Borrowed(ISO6523_AUTHORITY),
            id: OrgId::Norwegian(org),
        }
    }

    /// The `authority` member, normally `iso6523-actorid-upis`.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// The identifier.
    pub fn id(&self) -> &OrgId {
        &self.id
    }

    /// The Norwegian organisation number, if this is a `0192:` organisation.
    pub fn org_number(&self) -> Option<OrgNumber> {
        match self.id {
            OrgId::Norwegian(n) => Some(n),
            OrgId::Other(_) => None,
        }
    }
}

impl fmt::Display for Organisation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.id {
            OrgId::Norwegian(n) => write!(f, "0192:{n}"),
            OrgId::Other(s) => f.write_str(s),
        }
    }
}

/// The party a system user acts for, as sent to the PDP.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum Party {
    /// An organisation (`urn:altinn:organization:identifier-no`).
    Organisation(OrgNumber),
    /// A person, for client-delegated ("agent") system users (`urn:altinn:person:identifier-no`).
    Person(PersonId),
}

impl Party {
    /// Parses nine digits (or `0192:` + nine) as an organisation, eleven digits as a person.
    ///
    /// Lenient, for token claims. For a party taken from a request use
    /// [`parse_canonical`](Self::parse_canonical).
    pub fn parse(s: &str) -> Result<Self, IdentifierError> {
        match s.len() {
            11 => PersonId::parse(s).map(Party::Person),
            _ => OrgNumber::parse(s).map(Party::Organisation),
        }
    }

    /// Parses the canonical spelling only: exactly nine ASCII digits (valid mod-11 check digit)
    /// as an organisation, exactly eleven (valid check digits) as a person.
    ///
    /// This is how the system-user layer reads a party from a request path or header, so that
    /// the party asked about is the string the handler sees: the ISO 6523 prefix `0192:`,
    /// whitespace, signs, percent-encoding and non-ASCII digits are all refused.
    ///
    /// ```
    /// use altinn_systemuser::org::Party;
    /// assert!(matches!(Party::parse_canonical("923609016"), Ok(Party::Organisation(_))));
    /// assert!(matches!(Party::parse_canonical("01010012356"), Ok(Party::Person(_))));
    /// for other in ["0192:923609016", "923609016\n", "", "9236090160"] {
    ///     assert!(Party::parse_canonical(other).is_err(), "{other:?}");
    /// }
    /// ```
    pub fn parse_canonical(s: &str) -> Result<Self, IdentifierError> {
        match s.len() {
            11 => PersonId::parse(s).map(Party::Person),
            _ => OrgNumber::parse_canonical(s).map(Party::Organisation),
        }
    }

    /// The XACML attribute id the PDP uses for this kind of party.
    pub fn attribute_id(&self) -> &'static str {
        match self {
            Party::Organisation(_) => "urn:altinn:organization:identifier-no",
            Party::Person(_) => "urn:altinn:person:identifier-no",
        }
    }

    /// The organisation number, if the party is an organisation.
    pub fn org_number(&self) -> Option<OrgNumber> {
        match self {
            Party::Organisation(o) => Some(*o),
            Party::Person(_) => None,
        }
    }
}

impl From<OrgNumber> for Party {
    fn from(o: OrgNumber) -> Self {
        Party::Organisation(o)
    }
}

impl From<PersonId> for Party {
    fn from(p: PersonId) -> Self {
        Party::Person(p)
    }
}

impl fmt::Debug for Party {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Party::Organisation(o) => write!(f, "Organisation({o})"),
            Party::Person(p) => write!(f, "Person({p:?})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn org_numbers() {
        for ok in ["310702641", "991825827", "923609016", "0192:974760673"] {
            assert!(OrgNumber::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "310702640",
            "31070264",
            "3107026411",
            "31070264a",
            "",
            "0192:310702640",
            "0193:310702641",
        ] {
            assert!(OrgNumber::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(OrgNumber::parse("0192:310702641").unwrap().to_string(), "310702641");
    }

    #[test]
    fn person_ids() {
        // Synthetic test numbers (Tenor style) with valid check digits.
        assert!(PersonId::parse("01010012356").is_ok());
        assert!(PersonId::parse("01010012357").is_err());
        assert_eq!(format!("{:?}", PersonId::parse("01010012356").unwrap()), "PersonId(<redacted>)");
        assert!(!format!("{:?}", Party::parse("01010012356").unwrap()).contains("0101"));
    }

    #[test]
    fn canonical_parsers_accept_only_the_canonical_spelling() {
        assert_eq!(OrgNumber::parse_canonical("310702641"), OrgNumber::parse("310702641"));
        assert_eq!(Party::parse_canonical("923609016"), Party::parse("923609016"));
        assert_eq!(Party::parse_canonical("01010012356"), Party::parse("01010012356"));
        // Every spelling a client could try for 923609016 or for the person, other than the
        // canonical one: refused by the canonical parsers.
        for other in [
            "0192:923609016",
            "0192:01010012356",
            " 923609016",
            "923609016 ",
            "923609016\t",
            "\n923609016",
            "+923609016",
            "-923609016",
            "%39%32%33609016",
            "%30192:923609016",
            "0923609016",
            "923 609 016",
            "923.609.016",
            "９２３６０９０１６",
            "923609016\u{0}",
            "٩٢٣٦٠٩٠١٦",
            "",
            "01010012356 ",
            "+1010012356",
            "0192:",
            "0192",
        ] {
            assert!(Party::parse_canonical(other).is_err(), "{other:?}");
            assert!(OrgNumber::parse_canonical(other).is_err(), "{other:?}");
        }
        // The lenient parsers still read the token form (ISO 6523) and nothing looser.
        assert_eq!(
            Party::parse("0192:923609016").unwrap(),
            Party::parse_canonical("923609016").unwrap()
        );
        for other in [" 923609016", "+923609016", "９２３６０９０１６", "%39%32%33609016"] {
            assert!(Party::parse(other).is_err(), "{other:?}");
        }
        // Wrong check digits are refused whatever the parser.
        assert_eq!(OrgNumber::parse_canonical("923609017"), Err(IdentifierError::CheckDigit));
        assert_eq!(Party::parse_canonical("01010012357"), Err(IdentifierError::CheckDigit));
        // What Display writes is read back as the same party: the spelling is unique.
        for s in ["923609016", "01010012356", "000000000"] {
            if let Ok(p) = Party::parse_canonical(s) {
                let shown = match p {
                    Party::Organisation(o) => o.to_string(),
                    Party::Person(id) => id.to_string(),
                };
                assert_eq!(shown, s);
            }
        }
    }

    #[test]
    fn organisations() {
        let o = Organisation::from_iso6523(ISO6523_AUTHORITY, "0192:310702641").unwrap();
        assert_eq!(o.org_number().unwrap().to_string(), "310702641");
        let other = Organisation::from_iso6523(ISO6523_AUTHORITY, "0088:1234567890123").unwrap();
        assert_eq!(other.org_number(), None);
        assert!(Organisation::from_iso6523(ISO6523_AUTHORITY, "0192:310702640").is_err());
        assert!(Organisation::from_iso6523(ISO6523_AUTHORITY, "310702641").is_err());
    }

    /// Found by the `party` fuzz target: the prefix was stripped twice.
    #[test]
    fn an_iso6523_id_has_one_prefix() {
        for id in ["0192:0192:310702641", "0192: 310702641", "0192:+310702641"] {
            assert!(Organisation::from_iso6523(ISO6523_AUTHORITY, id).is_err(), "{id}");
        }
    }
}
