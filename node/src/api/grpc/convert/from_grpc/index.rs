//! Payload index schema: `field_type` and `field_index_params` of `CreateFieldIndexCollection`
//! into `PayloadFieldSchema`. The model keeps index parameters as Qdrant's JSON object and checks
//! them when it parses one, so the parameters are written in that shape and parsed by the model
//! (the same checks and messages as REST's `field_schema`).

use qdrant_client::qdrant as grpc;
use qdrant_client::qdrant::payload_index_params::IndexParams;
use qdrant_client::qdrant::stemming_algorithm::StemmingParams;
use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::storage::payload_index::{PayloadFieldSchema, PayloadSchemaType};

fn field_type(t: i32) -> Result<PayloadSchemaType> {
    Ok(match grpc::FieldType::try_from(t) {
        Ok(grpc::FieldType::Keyword) => PayloadSchemaType::Keyword,
        Ok(grpc::FieldType::Integer) => PayloadSchemaType::Integer,
        Ok(grpc::FieldType::Float) => PayloadSchemaType::Float,
        Ok(grpc::FieldType::Geo) => PayloadSchemaType::Geo,
        Ok(grpc::FieldType::Text) => PayloadSchemaType::Text,
        Ok(grpc::FieldType::Bool) => PayloadSchemaType::Bool,
        Ok(grpc::FieldType::Datetime) => PayloadSchemaType::Datetime,
        Ok(grpc::FieldType::Uuid) => PayloadSchemaType::Uuid,
        Err(_) => return Err(Error::bad_input(format!("unknown field_type {t}"))),
    })
}

/// A params object under construction: `{"type": ...}` plus the options that are set.
struct Params(Map<String, Value>);

impl Params {
    fn new(kind: PayloadSchemaType) -> Self {
        Params(Map::from_iter([("type".to_string(), json!(kind.name()))]))
    }

    fn set(&mut self, name: &str, value: Option<impl Into<Value>>) -> &mut Self {
        if let Some(v) = value {
            self.0.insert(name.to_string(), v.into());
        }
        self
    }
}

/// `nested` (per-element indexing) and BM25 `scoring` change query results; the node has
/// neither, so they are refused. `memory` only concerns storage here: it is kept and reported
/// back. Keyword `prefix` only concerns speed here and is ignored.
fn unsupported(what: &str) -> Error {
    Error::bad_input(format!("payload index option `{what}` is not supported by this node"))
}

fn no_nested(nested: &Option<String>) -> Result<()> {
    match nested {
        Some(_) => Err(unsupported("nested")),
        None => Ok(()),
    }
}

/// `memory`: `cold`, `cached` or `pinned` (`Unknown` = not given).
fn memory(m: Option<i32>) -> Result<Option<&'static str>> {
    let Some(m) = m else { return Ok(None) };
    match grpc::Memory::try_from(m) {
        Ok(grpc::Memory::Unknown) => Ok(None),
        Ok(grpc::Memory::Cold) => Ok(Some("cold")),
        Ok(grpc::Memory::Cached) => Ok(Some("cached")),
        Ok(grpc::Memory::Pinned) => Ok(Some("pinned")),
        Err(_) => Err(Error::bad_input(format!("unknown memory {m}"))),
    }
}

fn tokenizer(t: i32) -> Result<Option<&'static str>> {
    match grpc::TokenizerType::try_from(t) {
        Ok(grpc::TokenizerType::Unknown) => Ok(None),
        Ok(grpc::TokenizerType::Prefix) => Ok(Some("prefix")),
        Ok(grpc::TokenizerType::Whitespace) => Ok(Some("whitespace")),
        Ok(grpc::TokenizerType::Word) => Ok(Some("word")),
        Ok(grpc::TokenizerType::Multilingual) => Ok(Some("multilingual")),
        Ok(grpc::TokenizerType::Code) => Err(Error::bad_input("tokenizer `code` is not supported by this node")),
        Err(_) => Err(Error::bad_input(format!("unknown tokenizer {t}"))),
    }
}

// `on_disk` is deprecated in favour of `memory` but still sent by clients; REST takes it too.
#[allow(deprecated)]
fn params(p: IndexParams) -> Result<Params> {
    use PayloadSchemaType as T;
    Ok(match p {
        IndexParams::KeywordIndexParams(k) => {
            no_nested(&k.nested)?;
            let mut p = Params::new(T::Keyword);
            p.set("is_tenant", k.is_tenant)
                .set("on_disk", k.on_disk)
                .set("memory", memory(k.memory)?)
                .set("enable_hnsw", k.enable_hnsw);
            p
        }
        IndexParams::IntegerIndexParams(i) => {
            no_nested(&i.nested)?;
            let mut p = Params::new(T::Integer);
            p.set("lookup", i.lookup)
                .set("range", i.range)
                .set("is_principal", i.is_principal)
                .set("on_disk", i.on_disk)
                .set("memory", memory(i.memory)?)
                .set("enable_hnsw", i.enable_hnsw);
            p
        }
        IndexParams::FloatIndexParams(f) => {
            no_nested(&f.nested)?;
            let mut p = Params::new(T::Float);
            p.set("is_principal", f.is_principal)
                .set("on_disk", f.on_disk)
                .set("memory", memory(f.memory)?)
                .set("enable_hnsw", f.enable_hnsw);
            p
        }
        IndexParams::GeoIndexParams(g) => {
            no_nested(&g.nested)?;
            let mut p = Params::new(T::Geo);
            p.set("on_disk", g.on_disk)
                .set("memory", memory(g.memory)?)
                .set("enable_hnsw", g.enable_hnsw);
            p
        }
        IndexParams::BoolIndexParams(b) => {
            no_nested(&b.nested)?;
            let mut p = Params::new(T::Bool);
            p.set("on_disk", b.on_disk)
                .set("memory", memory(b.memory)?)
                .set("enable_hnsw", b.enable_hnsw);
            p
        }
        IndexParams::DatetimeIndexParams(d) => {
            no_nested(&d.nested)?;
            let mut p = Params::new(T::Datetime);
            p.set("is_principal", d.is_principal)
                .set("on_disk", d.on_disk)
                .set("memory", memory(d.memory)?)
                .set("enable_hnsw", d.enable_hnsw);
            p
        }
        IndexParams::UuidIndexParams(u) => {
            no_nested(&u.nested)?;
            let mut p = Params::new(T::Uuid);
            p.set("is_tenant", u.is_tenant)
                .set("on_disk", u.on_disk)
                .set("memory", memory(u.memory)?)
                .set("enable_hnsw", u.enable_hnsw);
            p
        }
        IndexParams::TextIndexParams(t) => {
            no_nested(&t.nested)?;
            if t.scoring.is_some() {
                return Err(unsupported("scoring"));
            }
            let mut p = Params::new(T::Text);
            p.set("tokenizer", tokenizer(t.tokenizer)?)
                .set("lowercase", t.lowercase)
                .set("min_token_len", t.min_token_len)
                .set("max_token_len", t.max_token_len)
                .set("on_disk", t.on_disk)
                .set("memory", memory(t.memory)?)
                .set("phrase_matching", t.phrase_matching)
                .set("ascii_folding", t.ascii_folding)
                .set("enable_hnsw", t.enable_hnsw)
                .set(
                    "stopwords",
                    // Empty lists are "not given" (Qdrant's conversion).
                    t.stopwords.map(|s| {
                        let mut m = Map::new();
                        if !s.languages.is_empty() {
                            m.insert("languages".into(), json!(s.languages));
                        }
                        if !s.custom.is_empty() {
                            m.insert("custom".into(), json!(s.custom));
                        }
                        Value::Object(m)
                    }),
                )
                .set(
                    "stemmer",
                    t.stemmer.and_then(|s| s.stemming_params).map(|s| match s {
                        StemmingParams::Snowball(s) => json!({"type": "snowball", "language": s.language}),
                        StemmingParams::Disabled(_) => json!({"type": "none"}),
                    }),
                );
            p
        }
    })
}

/// The schema of a new payload index. Parameters must be of the same type as `field_type`.
pub fn field_schema(
    field_type_id: Option<i32>,
    index_params: Option<grpc::PayloadIndexParams>,
) -> Result<PayloadFieldSchema> {
    let kind = field_type_id
        .map(field_type)
        .transpose()?
        .ok_or_else(|| Error::bad_input("field_type is required to create a payload index"))?;
    let Some(p) = index_params.and_then(|p| p.index_params) else {
        return Ok(PayloadFieldSchema::FieldType(kind));
    };
    let Params(object) = params(p)?;
    let schema: PayloadFieldSchema =
        serde_json::from_value(Value::Object(object)).map_err(|e| Error::bad_input(e.to_string()))?;
    if schema.kind() != kind {
        return Err(Error::bad_input(format!(
            "field_index_params are for a {} index but field_type is {kind}",
            schema.kind()
        )));
    }
    Ok(schema)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(p: IndexParams) -> Option<grpc::PayloadIndexParams> {
        Some(grpc::PayloadIndexParams { index_params: Some(p) })
    }

    #[test]
    fn type_only_and_with_params() {
        let s = field_schema(Some(grpc::FieldType::Keyword as i32), None).unwrap();
        assert_eq!(s, PayloadFieldSchema::FieldType(PayloadSchemaType::Keyword));
        let text = grpc::TextIndexParams {
            tokenizer: grpc::TokenizerType::Prefix as i32,
            lowercase: Some(false),
            min_token_len: Some(2),
            ..Default::default()
        };
        let s = field_schema(
            Some(grpc::FieldType::Text as i32),
            with(IndexParams::TextIndexParams(text)),
        )
        .unwrap();
        let expected: PayloadFieldSchema = serde_json::from_value(
            json!({"type": "text", "tokenizer": "prefix", "lowercase": false, "min_token_len": 2}),
        )
        .unwrap();
        assert_eq!(s, expected);
        let tenant = grpc::KeywordIndexParams {
            is_tenant: Some(true),
            ..Default::default()
        };
        let s = field_schema(
            Some(grpc::FieldType::Keyword as i32),
            with(IndexParams::KeywordIndexParams(tenant)),
        )
        .unwrap();
        assert!(s.is_tenant());
    }

    #[test]
    #[allow(deprecated)]
    fn text_options_and_memory() {
        use qdrant_client::qdrant::stemming_algorithm::StemmingParams;
        let text = grpc::TextIndexParams {
            tokenizer: grpc::TokenizerType::Multilingual as i32,
            phrase_matching: Some(true),
            ascii_folding: Some(true),
            stopwords: Some(grpc::StopwordsSet {
                languages: vec!["en".into()],
                custom: vec![],
            }),
            stemmer: Some(grpc::StemmingAlgorithm {
                stemming_params: Some(StemmingParams::Disabled(grpc::DisabledStemmer {})),
            }),
            memory: Some(grpc::Memory::Cold as i32),
            ..Default::default()
        };
        let s = field_schema(
            Some(grpc::FieldType::Text as i32),
            with(IndexParams::TextIndexParams(text)),
        )
        .unwrap();
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            json!({"type": "text", "tokenizer": "multilingual", "phrase_matching": true,
                   "ascii_folding": true, "stopwords": {"languages": ["english"]},
                   "stemmer": {"type": "none"}, "memory": "cold"})
        );
        let bad = grpc::TextIndexParams {
            stemmer: Some(grpc::StemmingAlgorithm {
                stemming_params: Some(StemmingParams::Snowball(grpc::SnowballParams {
                    language: "klingon".into(),
                })),
            }),
            ..Default::default()
        };
        assert!(field_schema(
            Some(grpc::FieldType::Text as i32),
            with(IndexParams::TextIndexParams(bad))
        )
        .is_err());
    }

    #[test]
    fn rejects_mismatch_missing_type_and_bad_params() {
        let int = grpc::IntegerIndexParams {
            lookup: Some(false),
            range: Some(false),
            ..Default::default()
        };
        let err = field_schema(
            Some(grpc::FieldType::Integer as i32),
            with(IndexParams::IntegerIndexParams(int.clone())),
        )
        .unwrap_err();
        assert!(err.to_string().contains("both disabled"), "{err}");
        let mismatch = field_schema(
            Some(grpc::FieldType::Keyword as i32),
            with(IndexParams::IntegerIndexParams(grpc::IntegerIndexParams::default())),
        );
        assert!(mismatch.unwrap_err().to_string().contains("field_type is keyword"));
        assert!(field_schema(None, None).is_err());
        assert!(field_schema(Some(99), None).is_err());
        let nested = grpc::FloatIndexParams {
            nested: Some("offers".into()),
            ..Default::default()
        };
        assert!(field_schema(
            Some(grpc::FieldType::Float as i32),
            with(IndexParams::FloatIndexParams(nested))
        )
        .is_err());
    }
}
