//! Strict JSON: objects whose member names are all distinct, read in one pass.
//!
//! A document that says two things under one name can be read two ways (serde's derive refuses
//! a repeated *known* field but silently keeps one of two repeated unknown ones; a
//! [`serde_json::Value`] keeps the last), so two readers of it can disagree. Everything this
//! crate reads from a token or an upstream is read here, and a repeated name is an error:
//!
//! - [`from_str_unique`] / [`from_slice_unique`]: the top-level object's member names are
//!   checked as they go by, then handed on to the derived `Deserialize` (token headers and
//!   claims, the system-user entries of `authorization_details`, RFC 8414 metadata, the JWKS's
//!   top level). Nested objects are left to the derive (a repeated known field is its error).
//! - [`value_from_slice`] / [`value_from_str`]: a [`serde_json::Value`] whose objects, at every
//!   depth, have distinct member names; with [`Names::IgnoreAsciiCase`] two names that differ
//!   only in ASCII case count as the same name (PDP answers, which are read case-insensitively),
//!   with [`Names::Exact`] they are different (each JWK).
//!
//! Names are compared unescaped (`"a"` and `"\u0061"` are the same name). Depth is bounded by
//! serde_json's recursion limit.

use serde::de::value::{BorrowedStrDeserializer, StrDeserializer};
use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, forward_to_deserialize_any};
use serde_json::Value;
use smallvec::SmallVec;
use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

/// `T` from `json`, which must be an object with distinct top-level member names and nothing
/// after it. Nested objects are read by `T`'s own `Deserialize`.
pub(crate) fn from_str_unique<'de, T: Deserialize<'de>>(json: &'de str) -> Result<T, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(json);
    let value = T::deserialize(UniqueMembers(&mut de))?;
    de.end()?;
    Ok(value)
}

/// [`from_str_unique`] for bytes (which must be UTF-8 where they are strings).
pub(crate) fn from_slice_unique<'de, T: Deserialize<'de>>(json: &'de [u8]) -> Result<T, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(json);
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
            seen: Seen::default(),
        })
    }
}

struct CheckedMap<'de, A> {
    map: A,
    seen: Seen<'de>,
}

/// Names seen so far: a short list kept inline (a token has a dozen claims: no allocation),
/// then a hash set, so that a document with many members costs linear time.
#[derive(Default)]
pub(crate) struct Seen<'de> {
    few: SmallVec<[Name<'de>; Seen::FEW]>,
    /// One bit per name in `few`, from its length and end bytes: a name whose bit is not set
    /// is new without comparing it to any.
    bits: u64,
    many: HashSet<Name<'de>>,
}

impl<'de> Seen<'de> {
    const FEW: usize = 32;

    /// The bit of `name` in `bits`: equal names have equal bits.
    fn bit(name: &str) -> u64 {
        let b = name.as_bytes();
        let first = usize::from(b.first().copied().unwrap_or(0));
        let last = usize::from(b.last().copied().unwrap_or(0));
        let mix = b.len() ^ (first << 1) ^ (last << 2);
        1 << (mix % 64)
    }

    /// Records `name`; false if it was seen before.
    pub(crate) fn insert(&mut self, name: Name<'de>) -> bool {
        if self.many.is_empty() {
            let bit = Self::bit(&name);
            if self.bits & bit != 0 && self.few.contains(&name) {
                return false;
            }
            if self.few.len() < Self::FEW {
                self.bits |= bit;
                self.few.push(name);
                return true;
            }
            self.many.extend(self.few.drain(..));
        }
        self.many.insert(name)
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for CheckedMap<'de, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, A::Error> {
        let Some(name) = self.map.next_key::<Name<'de>>()? else {
            return Ok(None);
        };
        let key = match &name.0 {
            Cow::Borrowed(s) => seed.deserialize(BorrowedStrDeserializer::<A::Error>::new(s))?,
            Cow::Owned(s) => seed.deserialize(StrDeserializer::<A::Error>::new(s))?,
        };
        if !self.seen.insert(name) {
            return Err(A::Error::custom("repeated member name"));
        }
        Ok(Some(key))
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, A::Error> {
        self.map.next_value_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.map.size_hint()
    }
}

/// A member name (or any string), unescaped: borrowed from the text unless it has escapes.
/// Serde's own `Cow<str>` always allocates, also under `#[serde(borrow)]` when it is inside an
/// `Option`: string claims and header members are read as `Option<Name>` instead.
#[derive(PartialEq, Eq, Hash)]
pub(crate) struct Name<'de>(pub(crate) Cow<'de, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Name<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl<'de> Visitor<'de> for NameVisitor {
            type Value = Name<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
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

impl Name<'_> {
    /// The text, owned.
    pub(crate) fn into_string(self) -> String {
        self.0.into_owned()
    }
}

impl std::ops::Deref for Name<'_> {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

/// How member names are compared by [`value_from_slice`] and [`value_from_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Names {
    /// Byte for byte (after unescaping).
    Exact,
    /// Ignoring ASCII case: `Decision` and `decision` are one name.
    IgnoreAsciiCase,
}

/// A JSON value from `json`, refusing any object (at any depth) with a repeated member name, and
/// anything after the value.
pub(crate) fn value_from_slice(json: &[u8], names: Names) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(json);
    let value = StrictValue(names).deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// [`value_from_slice`] for text.
pub(crate) fn value_from_str(json: &str, names: Names) -> Result<Value, serde_json::Error> {
    value_from_slice(json.as_bytes(), names)
}

/// Builds a [`Value`] like serde_json's own visitor, but checks every object's member names.
#[derive(Clone, Copy)]
struct StrictValue(Names);

impl<'de> DeserializeSeed<'de> for StrictValue {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        // serde_json never produces a non-finite number; if one came, it would read as null.
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = serde_json::Map::new();
        // Lower-cased names seen so far, when case is ignored.
        let mut folded: HashSet<String> = HashSet::new();
        while let Some(name) = map.next_key::<String>()? {
            let repeated = match self.0 {
                Names::Exact => object.contains_key(&name),
                Names::IgnoreAsciiCase => !folded.insert(name.to_ascii_lowercase()),
            };
            if repeated {
                return Err(A::Error::custom("repeated member name"));
            }
            let value = map.next_value_seed(self)?;
            object.insert(name, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests;
