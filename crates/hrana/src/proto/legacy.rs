//! Legacy sqld HTTP shapes some clients still send: `POST /v1/execute`, `POST /v1/batch`
//! (HTTP_V1_SPEC.md: Hrana structures, one fresh stream per request) and `POST /` with
//! `{"statements": [...]}` (http_api.md: plain JSON values, one transaction).

use std::fmt;

use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::shared::{Batch, BatchResult, Stmt, StmtResult};
use super::value::{Value, BASE64};
use base64::Engine as _;

/// Body of `POST /v1/execute`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct V1ExecuteReq {
    /// The statement.
    pub stmt: Stmt,
}

/// Response of `POST /v1/execute`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct V1ExecuteResp {
    /// The statement's result.
    pub result: StmtResult,
}

/// Body of `POST /v1/batch`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct V1BatchReq {
    /// The batch.
    pub batch: Batch,
}

/// Response of `POST /v1/batch`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct V1BatchResp {
    /// The batch's result.
    pub result: BatchResult,
}

/// Body of `POST /`: statements run in one transaction.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct QueryBody {
    /// Plain SQL strings or `{"q": ..., "params": ...}` objects.
    pub statements: Vec<LegacyQuery>,
}

/// One statement of `POST /`.
#[derive(Clone, Debug, PartialEq)]
pub struct LegacyQuery {
    /// The SQL text.
    pub q: String,
    /// Its parameters.
    pub params: LegacyParams,
}

/// Parameters of a legacy statement.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum LegacyParams {
    /// No parameters.
    #[default]
    None,
    /// By position.
    Positional(Vec<Value>),
    /// By name; a name without prefix matches `:name`, `@name` and `$name`.
    Named(Vec<(String, Value)>),
}

/// One entry of the `POST /` response array.
#[derive(Clone, Debug, PartialEq)]
pub enum LegacyQueryResult {
    /// The statement succeeded: `{"results": {"columns": [...], "rows": [[...]]}}`.
    Results {
        /// Column names.
        columns: Vec<String>,
        /// Rows of plain JSON values.
        rows: Vec<Vec<Value>>,
    },
    /// The statement failed and the transaction was rolled back: `{"error": "..."}`.
    Error(String),
}

impl Serialize for LegacyQueryResult {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Rows<'a> {
            columns: &'a [String],
            rows: Vec<Vec<PlainValue<'a>>>,
        }
        let mut map = s.serialize_map(Some(1))?;
        match self {
            LegacyQueryResult::Results { columns, rows } => {
                let rows = rows
                    .iter()
                    .map(|r| r.iter().map(PlainValue).collect())
                    .collect();
                map.serialize_entry("results", &Rows { columns, rows })?;
            }
            LegacyQueryResult::Error(message) => map.serialize_entry("error", message)?,
        }
        map.end()
    }
}

/// A value in the legacy plain-JSON form: `null`, numbers, strings, `{"base64": ...}`.
struct PlainValue<'a>(&'a Value);

impl Serialize for PlainValue<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Null => s.serialize_none(),
            Value::Integer { value } => s.serialize_i64(*value),
            Value::Float { value } => s.serialize_f64(*value),
            Value::Text { value } => s.serialize_str(value),
            Value::Blob { value } => {
                let mut map = s.serialize_map(Some(1))?;
                map.serialize_entry("base64", &BASE64.encode(value))?;
                map.end()
            }
        }
    }
}

/// Parses one legacy plain-JSON value (booleans become 0/1 as in sqld).
struct PlainValueIn(Value);

impl<'de> Deserialize<'de> for PlainValueIn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(PlainVisitor).map(PlainValueIn)
    }
}

struct PlainVisitor;

impl<'de> Visitor<'de> for PlainVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("null, a boolean, a number, a string or {\"base64\": ...}")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Integer {
            value: i64::from(v),
        })
    }
    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Value, E> {
        Ok(Value::Integer { value })
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        i64::try_from(v)
            .map(|value| Value::Integer { value })
            .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &"a 64-bit signed integer"))
    }
    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Value, E> {
        Ok(Value::Float { value })
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Text {
            value: v.to_owned(),
        })
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let Some((key, text)) = map.next_entry::<String, String>()? else {
            return Err(de::Error::missing_field("base64"));
        };
        if key != "base64" {
            return Err(de::Error::unknown_field(&key, &["base64"]));
        }
        if map.next_key::<de::IgnoredAny>()?.is_some() {
            return Err(de::Error::custom(
                "a blob object has exactly one key, `base64`",
            ));
        }
        let value = BASE64
            .decode(text.as_bytes())
            .map_err(|_| de::Error::invalid_value(de::Unexpected::Str(&text), &"base64 bytes"))?;
        Ok(Value::Blob { value })
    }
}

impl<'de> Deserialize<'de> for LegacyParams {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ParamsVisitor;
        impl<'de> Visitor<'de> for ParamsVisitor {
            type Value = LegacyParams;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array or an object of parameters")
            }
            fn visit_unit<E: de::Error>(self) -> Result<LegacyParams, E> {
                Ok(LegacyParams::None)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<LegacyParams, A::Error> {
                let mut out = Vec::new();
                while let Some(PlainValueIn(v)) = seq.next_element()? {
                    out.push(v);
                }
                Ok(LegacyParams::Positional(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<LegacyParams, A::Error> {
                let mut out = Vec::new();
                while let Some((k, PlainValueIn(v))) = map.next_entry::<String, PlainValueIn>()? {
                    out.push((k, v));
                }
                Ok(LegacyParams::Named(out))
            }
        }
        d.deserialize_any(ParamsVisitor)
    }
}

impl<'de> Deserialize<'de> for LegacyQuery {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Plain(String),
            Full {
                q: String,
                #[serde(default)]
                params: LegacyParams,
            },
        }
        Ok(match Raw::deserialize(d)? {
            Raw::Plain(q) => LegacyQuery {
                q,
                params: LegacyParams::None,
            },
            Raw::Full { q, params } => LegacyQuery { q, params },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_mixed_statements() {
        let body: QueryBody = serde_json::from_value(json!({"statements": [
            "select * from t",
            {"q": "select ?, ?, ?, ?, ?", "params": [12, true, 1.5, {"base64": "aGVsbG8K"}, null]},
            {"q": "select :foo", "params": {":foo": "bar"}},
            {"q": "select 1"}
        ]}))
        .unwrap();
        assert_eq!(body.statements[0].params, LegacyParams::None);
        assert_eq!(
            body.statements[1].params,
            LegacyParams::Positional(vec![
                Value::Integer { value: 12 },
                Value::Integer { value: 1 },
                Value::Float { value: 1.5 },
                Value::Blob {
                    value: b"hello\n".to_vec()
                },
                Value::Null,
            ])
        );
        assert_eq!(
            body.statements[2].params,
            LegacyParams::Named(vec![(
                ":foo".into(),
                Value::Text {
                    value: "bar".into()
                }
            )])
        );
    }

    #[test]
    fn rejects_bad_blob_objects() {
        for bad in [
            json!({"b64": "aa"}),
            json!({"base64": "aa", "x": 1}),
            json!({"base64": "*"}),
        ] {
            let r = serde_json::from_value::<QueryBody>(
                json!({"statements": [{"q": "select ?", "params": [bad]}]}),
            );
            assert!(r.is_err());
        }
    }

    #[test]
    fn result_shape_is_plain_json() {
        let r = vec![
            LegacyQueryResult::Results {
                columns: vec!["a".into(), "b".into()],
                rows: vec![vec![
                    Value::Integer { value: 1 },
                    Value::Blob { value: vec![0xff] },
                ]],
            },
            LegacyQueryResult::Error("boom".into()),
        ];
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!([
                {"results": {"columns": ["a", "b"], "rows": [[1, {"base64": "/w"}]]}},
                {"error": "boom"}
            ])
        );
    }
}
