//! A token response read as one flat JSON object in one pass, without
//! building a JSON tree: the fast path of the adapters' readers.

use std::borrow::Cow;

use serde::de::{DeserializeSeed, MapAccess, Visitor};
use serde_json::{Map, Value};

use crate::wire::UniqueValue;

/// A body read by [`FlatObject::read`]: the values of the named members,
/// kept apart (their strings can be moved out, never copied), and every
/// other member, as sent.
///
/// A reader that uses it reads the body again with
/// [`JsonResponse::json`](crate::adapter::JsonResponse::json) when it
/// gives up, or when a value is not what the reader expects, so that every
/// error is the one the general reader gives.
pub struct FlatObject<'n, const N: usize> {
    names: [&'n str; N],
    values: [Option<Value>; N],
    extra: Map<String, Value>,
}

/// Names only: the values are a token response's, secrets among them.
impl<const N: usize> std::fmt::Debug for FlatObject<'_, N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let present: Vec<&str> = self
            .names
            .iter()
            .zip(&self.values)
            .filter(|(_, value)| value.is_some())
            .map(|(name, _)| *name)
            .collect();
        f.debug_struct("FlatObject")
            .field("present", &present)
            .field("extra_keys", &self.extra.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl<'n, const N: usize> FlatObject<'n, N> {
    /// Reads `body` as one JSON object, keeping the members named in
    /// `names` (an empty name is no member) apart from the others.
    ///
    /// `None` (read it the general way) when the body is not exactly one
    /// JSON object, when an object in it repeats a key, when a name is
    /// given twice, or when it has an `error` member (which the general
    /// reader decides about).
    pub fn read(body: &[u8], names: [&'n str; N]) -> Option<Self> {
        for (i, name) in names.iter().enumerate() {
            if !name.is_empty() && names[..i].contains(name) {
                return None;
            }
        }
        let mut deserializer = serde_json::Deserializer::from_slice(body);
        let object = FlatSeed { names }.deserialize(&mut deserializer).ok()?;
        deserializer.end().ok()?;
        Some(object)
    }

    fn index(&self, name: &str) -> Option<usize> {
        self.names
            .iter()
            .position(|known| !known.is_empty() && *known == name)
    }

    /// The value of member `name` (a named one, or another).
    pub fn get(&self, name: &str) -> Option<&Value> {
        match self.index(name) {
            Some(i) => self.values[i].as_ref(),
            None => self.extra.get(name),
        }
    }

    /// Takes the string value of a named member out (`None`, and nothing
    /// taken, when it is absent or not a string).
    pub fn take_string(&mut self, name: &str) -> Option<String> {
        let slot = &mut self.values[self.index(name)?];
        match slot.take() {
            Some(Value::String(text)) => Some(text),
            other => {
                *slot = other;
                None
            }
        }
    }

    /// The members not named, in the order of their keys.
    pub fn into_extra(self) -> Map<String, Value> {
        self.extra
    }
}

/// Reads the top-level object; fails (and the reader gives up) on an
/// `error` member or a repeated key.
struct FlatSeed<'n, const N: usize> {
    names: [&'n str; N],
}

impl<'de, 'n, const N: usize> DeserializeSeed<'de> for FlatSeed<'n, N> {
    type Value = FlatObject<'n, N>;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, 'n, const N: usize> Visitor<'de> for FlatSeed<'n, N> {
    type Value = FlatObject<'n, N>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a token object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let give_up = || serde::de::Error::custom("not a flat token object");
        let mut object = FlatObject {
            names: self.names,
            values: std::array::from_fn(|_| None),
            extra: Map::new(),
        };
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            if key == "error" {
                return Err(give_up());
            }
            match object.index(&key) {
                Some(i) => {
                    if object.values[i].is_some() {
                        return Err(give_up());
                    }
                    object.values[i] = Some(map.next_value_seed(UniqueValue)?);
                }
                None => match object.extra.entry(key.into_owned()) {
                    serde_json::map::Entry::Occupied(_) => return Err(give_up()),
                    serde_json::map::Entry::Vacant(entry) => {
                        entry.insert(map.next_value_seed(UniqueValue)?);
                    }
                },
            }
        }
        Ok(object)
    }
}

/// An object key, borrowed from the body when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::FlatObject;

    #[test]
    fn debug_shows_the_names_never_the_values() {
        let body =
            br#"{"access_token":"at-secret-1","refresh_token":"rt-secret-2","note":"n-secret-3"}"#;
        let object = FlatObject::read(body, ["access_token", "refresh_token"]).unwrap();
        let shown = format!("{object:?}");
        assert!(
            shown.contains("access_token") && shown.contains("note"),
            "{shown}"
        );
        assert!(!shown.contains("secret"), "{shown}");
    }
}
