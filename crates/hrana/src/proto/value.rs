//! The Hrana `Value`: one SQLite value on the wire. Integers travel as decimal strings (exact
//! 64-bit), floats as JSON numbers, blobs as base64 (we emit unpadded and accept both forms).

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::ToSql;
use serde::{Deserialize, Serialize};

/// Standard-alphabet base64 that writes no padding and reads padded or unpadded input.
pub const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A SQLite value as Hrana encodes it (`{"type": "integer", "value": "42"}` …).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Value {
    /// SQL NULL.
    Null,
    /// A 64-bit signed integer, a decimal string in JSON.
    Integer {
        /// The integer.
        #[serde(with = "i64_string")]
        value: i64,
    },
    /// A 64-bit float. Non-finite floats have no JSON form and serialize as `null`.
    Float {
        /// The float.
        value: f64,
    },
    /// UTF-8 text.
    Text {
        /// The text.
        value: String,
    },
    /// Bytes, base64 in JSON under the key `base64`.
    Blob {
        /// The bytes.
        #[serde(rename = "base64", with = "base64_bytes")]
        value: Vec<u8>,
    },
}

impl Value {
    /// An approximate size of this value in a JSON response, used for the result-size cap.
    pub fn wire_size(&self) -> usize {
        const OVERHEAD: usize = 24; // `{"type":"integer","value":}` and friends
        OVERHEAD
            + match self {
                Value::Null => 0,
                Value::Integer { .. } | Value::Float { .. } => 22,
                Value::Text { value } => value.len(),
                Value::Blob { value } => value.len().div_ceil(3) * 4,
            }
    }
}

impl From<ValueRef<'_>> for Value {
    fn from(v: ValueRef<'_>) -> Self {
        match v {
            ValueRef::Null => Value::Null,
            ValueRef::Integer(value) => Value::Integer { value },
            ValueRef::Real(value) => Value::Float { value },
            ValueRef::Text(t) => Value::Text {
                value: String::from_utf8_lossy(t).into_owned(),
            },
            ValueRef::Blob(b) => Value::Blob { value: b.to_vec() },
        }
    }
}

impl ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Null => ValueRef::Null,
            Value::Integer { value } => ValueRef::Integer(*value),
            Value::Float { value } => ValueRef::Real(*value),
            Value::Text { value } => ValueRef::Text(value.as_bytes()),
            Value::Blob { value } => ValueRef::Blob(value),
        }))
    }
}

/// `i64` as a decimal string; also accepts a JSON integer on input (lenient, lossless).
pub(crate) mod i64_string {
    use serde::de::{Error, Unexpected, Visitor};
    use serde::{Deserializer, Serializer};
    use std::fmt;

    pub fn serialize<S: Serializer>(v: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        d.deserialize_any(I64Visitor)
    }

    pub(crate) struct I64Visitor;

    impl Visitor<'_> for I64Visitor {
        type Value = i64;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a 64-bit integer as a decimal string")
        }

        fn visit_str<E: Error>(self, v: &str) -> Result<i64, E> {
            v.parse()
                .map_err(|_| E::invalid_value(Unexpected::Str(v), &self))
        }

        fn visit_i64<E: Error>(self, v: i64) -> Result<i64, E> {
            Ok(v)
        }

        fn visit_u64<E: Error>(self, v: u64) -> Result<i64, E> {
            i64::try_from(v).map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &self))
        }
    }
}

/// `Option<i64>` as an optional decimal string (`last_insert_rowid`).
pub(crate) mod opt_i64_string {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.collect_str(v),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        #[derive(Deserialize)]
        struct Wrap(#[serde(with = "super::i64_string")] i64);
        Ok(Option::<Wrap>::deserialize(d)?.map(|w| w.0))
    }
}

mod base64_bytes {
    use super::BASE64;
    use base64::Engine as _;
    use serde::de::{Error, Unexpected};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&BASE64.encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(d)?;
        BASE64
            .decode(text.as_bytes())
            .map_err(|_| D::Error::invalid_value(Unexpected::Str(&text), &"base64 bytes"))
    }
}

/// Encodes bytes the way Hrana emits blobs (standard alphabet, no padding).
pub fn encode_base64(bytes: &[u8]) -> String {
    BASE64.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn roundtrip(v: &Value) -> Value {
        serde_json::from_str(&serde_json::to_string(v).unwrap()).unwrap()
    }

    #[test]
    fn integers_are_exact_decimal_strings() {
        for value in [i64::MAX, i64::MIN, 0, -1, 9_007_199_254_740_993] {
            let v = Value::Integer { value };
            assert_eq!(
                serde_json::to_value(&v).unwrap(),
                json!({"type": "integer", "value": value.to_string()})
            );
            assert_eq!(roundtrip(&v), v);
        }
    }

    #[test]
    fn integer_accepts_json_number_and_rejects_garbage() {
        let v: Value = serde_json::from_value(json!({"type": "integer", "value": 7})).unwrap();
        assert_eq!(v, Value::Integer { value: 7 });
        for bad in [
            json!("1.5"),
            json!("abc"),
            json!("9223372036854775808"),
            json!(1.5),
        ] {
            assert!(
                serde_json::from_value::<Value>(json!({"type": "integer", "value": bad})).is_err()
            );
        }
    }

    #[test]
    fn blob_emits_unpadded_and_accepts_padded() {
        let v = Value::Blob {
            value: b"hello".to_vec(),
        };
        assert_eq!(
            serde_json::to_value(&v).unwrap(),
            json!({"type": "blob", "base64": "aGVsbG8"})
        );
        let padded: Value =
            serde_json::from_value(json!({"type": "blob", "base64": "aGVsbG8="})).unwrap();
        assert_eq!(padded, v);
        let bad = serde_json::from_value::<Value>(json!({"type": "blob", "base64": "a*b"}));
        assert!(bad.is_err());
    }

    #[test]
    fn null_float_text_shapes() {
        assert_eq!(
            serde_json::to_value(Value::Null).unwrap(),
            json!({"type": "null"})
        );
        let f = Value::Float { value: 1.5 };
        assert_eq!(
            serde_json::to_value(&f).unwrap(),
            json!({"type": "float", "value": 1.5})
        );
        let from_int: Value = serde_json::from_value(json!({"type": "float", "value": 2})).unwrap();
        assert_eq!(from_int, Value::Float { value: 2.0 });
        let t = Value::Text {
            value: "é\"x".into(),
        };
        assert_eq!(roundtrip(&t), t);
    }

    #[test]
    fn unknown_fields_are_ignored_unknown_types_rejected() {
        let v: Value =
            serde_json::from_value(json!({"type": "text", "value": "a", "extra": 1})).unwrap();
        assert_eq!(v, Value::Text { value: "a".into() });
        assert!(serde_json::from_value::<Value>(json!({"type": "bigint", "value": "1"})).is_err());
    }
}
