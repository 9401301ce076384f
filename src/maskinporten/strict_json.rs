//! Strict JSON for token headers and claims: a top-level object whose member names are all
//! distinct, read in one pass.
//!
//! serde's derive rejects a repeated *known* field but silently keeps one of two repeated
//! unknown ones; a token that says two things under one name must be refused outright, so that
//! two readers of the same token can never disagree about what it says. [`from_str_unique`]
//! wraps serde_json's deserializer and checks every top-level member name as it goes by, then
//! hands it on to the derived `Deserialize`: one parse instead of a checking pass and a reading
//! pass.

use serde::de::value::{BorrowedStrDeserializer, StrDeserializer};
use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, Visitor};
use serde::{Deserialize, forward_to_deserialize_any};
use std::borrow::Cow;
use std::fmt;

/// `T` from `json`, which must be an object with distinct top-level member names and nothing
/// after it.
pub(crate) fn from_str_unique<'de, T: Deserialize<'de>>(json: &'de str) -> Result<T, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(json);
    let value = T::deserialize(UniqueMembers(&mut de))?;
    de.end()?;
    Ok(value)
}

/// A deserializer that only produces objects, checking their member names.
struct UniqueMembers<D>(D);

impl<'de, D: Deserializer<'de>> Deserializer<'de> for UniqueMembers<D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_map(CheckedVisitor(visitor))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_map(CheckedVisitor(visitor))
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option
        unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}

/// Hands the visitor a map whose member names are checked.
struct CheckedVisitor<V>(V);

impl<'de, V: Visitor<'de>> Visitor<'de> for CheckedVisitor<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.expecting(f)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.0.visit_map(CheckedMap {
            map,
            seen: Vec::with_capacity(16),
        })
    }
}

struct CheckedMap<'de, A> {
    map: A,
    seen: Vec<Name<'de>>,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for CheckedMap<'de, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, A::Error> {
        let Some(name) = self.map.next_key::<Name<'de>>()? else {
            return Ok(None);
        };
        if self.seen.contains(&name) {
            return Err(A::Error::custom("repeated member name"));
        }
        let key = match &name.0 {
            Cow::Borrowed(s) => seed.deserialize(BorrowedStrDeserializer::<A::Error>::new(s))?,
            Cow::Owned(s) => seed.deserialize(StrDeserializer::<A::Error>::new(s))?,
        };
        self.seen.push(name);
        Ok(Some(key))
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, A::Error> {
        self.map.next_value_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.map.size_hint()
    }
}

/// A member name, unescaped: borrowed from the text unless it has escapes (serde's own
/// `Cow<str>` always allocates).
#[derive(PartialEq)]
struct Name<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Name<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl<'de> Visitor<'de> for NameVisitor {
            type Value = Name<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, s: &'de str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Borrowed(s)))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Owned(s.to_owned())))
            }
        }
        d.deserialize_str(NameVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::IgnoredAny;
    use serde_json::value::RawValue;

    fn unique(json: &str) -> bool {
        from_str_unique::<IgnoredAny>(json).is_ok()
    }

    #[test]
    fn member_names_must_be_distinct_at_the_top_level() {
        assert!(unique(r#"{"a":1,"b":{"a":2}}"#));
        assert!(unique(r#"{}"#));
        assert!(!unique(r#"{"a":1,"a":1}"#));
        assert!(!unique(r#"{"a":1,"b":2,"a":3}"#));
        // Names are compared unescaped.
        assert!(!unique(r#"{"a\u0061":1,"aa":1}"#));
        assert!(!unique(r#"{"\u0061":1,"a":1}"#));
        // Only objects, and nothing after them.
        assert!(!unique(r#"[1]"#));
        assert!(!unique(r#""a""#));
        assert!(!unique(r#"{"a":1} x"#));
        assert!(!unique(r#"{"a":1"#));
    }

    #[derive(Deserialize, Debug)]
    struct Claims<'a> {
        #[serde(borrow)]
        iss: Option<Cow<'a, str>>,
        exp: Option<i64>,
        #[serde(borrow)]
        details: Option<&'a RawValue>,
    }

    #[test]
    fn reads_what_the_derive_reads() {
        let c: Claims = from_str_unique(r#"{"iss":"x","other":[1,{"a":2}],"exp":5,"details":[{"t":"u"}]}"#).unwrap();
        assert_eq!(c.iss.as_deref(), Some("x"));
        assert_eq!(c.exp, Some(5));
        assert_eq!(c.details.unwrap().get(), r#"[{"t":"u"}]"#);
        // Escaped names still reach their field.
        let c: Claims = from_str_unique(r#"{"i\u0073s":"y"}"#).unwrap();
        assert_eq!(c.iss.as_deref(), Some("y"));
        // A repeated unknown member is refused as well as a repeated known one.
        assert!(from_str_unique::<Claims>(r#"{"other":1,"other":2}"#).is_err());
        assert!(from_str_unique::<Claims>(r#"{"exp":1,"exp":2}"#).is_err());
        // Wrong types are still errors.
        assert!(from_str_unique::<Claims>(r#"{"exp":"soon"}"#).is_err());
    }
}
