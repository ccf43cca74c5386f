//! `payload_schema` of collection info: each indexed field's type, index parameters and count.

use qdrant_client::qdrant as grpc;
use qdrant_client::qdrant::payload_index_params::IndexParams;
use serde_json::Value;

use crate::storage::payload_index::{PayloadIndexInfo, PayloadSchemaParams, PayloadSchemaType};

const TOKENIZERS: &[(grpc::TokenizerType, &str)] = &[
    (grpc::TokenizerType::Prefix, "prefix"),
    (grpc::TokenizerType::Whitespace, "whitespace"),
    (grpc::TokenizerType::Word, "word"),
    (grpc::TokenizerType::Multilingual, "multilingual"),
    (grpc::TokenizerType::Code, "code"),
];

pub fn schema_type(kind: PayloadSchemaType) -> grpc::PayloadSchemaType {
    match kind {
        PayloadSchemaType::Keyword => grpc::PayloadSchemaType::Keyword,
        PayloadSchemaType::Integer => grpc::PayloadSchemaType::Integer,
        PayloadSchemaType::Float => grpc::PayloadSchemaType::Float,
        PayloadSchemaType::Geo => grpc::PayloadSchemaType::Geo,
        PayloadSchemaType::Text => grpc::PayloadSchemaType::Text,
        PayloadSchemaType::Bool => grpc::PayloadSchemaType::Bool,
        PayloadSchemaType::Datetime => grpc::PayloadSchemaType::Datetime,
        PayloadSchemaType::Uuid => grpc::PayloadSchemaType::Uuid,
    }
}

pub fn schema_info(info: &PayloadIndexInfo) -> grpc::PayloadSchemaInfo {
    grpc::PayloadSchemaInfo {
        data_type: schema_type(info.data_type) as i32,
        params: info.params.as_ref().map(index_params),
        points: Some(info.points as u64),
    }
}

/// The typed parameters of an index created with a params object (`{"type": "text", ...}`).
#[allow(deprecated)] // `on_disk` is deprecated in favour of `memory` but still reported.
pub fn index_params(p: &PayloadSchemaParams) -> grpc::PayloadIndexParams {
    let flag = |name: &str| p.get(name).and_then(Value::as_bool);
    let on_disk = flag("on_disk");
    let enable_hnsw = flag("enable_hnsw");
    let memory = memory(p);
    let params = match p.kind() {
        PayloadSchemaType::Keyword => IndexParams::KeywordIndexParams(grpc::KeywordIndexParams {
            is_tenant: flag("is_tenant"),
            on_disk,
            enable_hnsw,
            memory,
            ..Default::default()
        }),
        PayloadSchemaType::Uuid => IndexParams::UuidIndexParams(grpc::UuidIndexParams {
            is_tenant: flag("is_tenant"),
            on_disk,
            enable_hnsw,
            memory,
            ..Default::default()
        }),
        PayloadSchemaType::Integer => IndexParams::IntegerIndexParams(grpc::IntegerIndexParams {
            lookup: flag("lookup"),
            range: flag("range"),
            is_principal: flag("is_principal"),
            on_disk,
            enable_hnsw,
            memory,
            ..Default::default()
        }),
        PayloadSchemaType::Float => IndexParams::FloatIndexParams(grpc::FloatIndexParams {
            is_principal: flag("is_principal"),
            on_disk,
            enable_hnsw,
            memory,
            ..Default::default()
        }),
        PayloadSchemaType::Datetime => IndexParams::DatetimeIndexParams(grpc::DatetimeIndexParams {
            is_principal: flag("is_principal"),
            on_disk,
            enable_hnsw,
            memory,
            ..Default::default()
        }),
        PayloadSchemaType::Geo => IndexParams::GeoIndexParams(grpc::GeoIndexParams {
            on_disk,
            enable_hnsw,
            memory,
            ..Default::default()
        }),
        PayloadSchemaType::Bool => IndexParams::BoolIndexParams(grpc::BoolIndexParams {
            on_disk,
            enable_hnsw,
            memory,
            ..Default::default()
        }),
        PayloadSchemaType::Text => IndexParams::TextIndexParams(grpc::TextIndexParams {
            memory,
            ..text_params(p, on_disk, enable_hnsw)
        }),
    };
    grpc::PayloadIndexParams {
        index_params: Some(params),
    }
}

#[allow(deprecated)] // `on_disk` is deprecated in favour of `memory` but still reported.
fn text_params(p: &PayloadSchemaParams, on_disk: Option<bool>, enable_hnsw: Option<bool>) -> grpc::TextIndexParams {
    let flag = |name: &str| p.get(name).and_then(Value::as_bool);
    let uint = |name: &str| p.get(name).and_then(Value::as_u64);
    grpc::TextIndexParams {
        // Unset is `Unknown` (0), which clients read as "not given".
        tokenizer: p
            .get("tokenizer")
            .and_then(Value::as_str)
            .and_then(|t| TOKENIZERS.iter().find(|(_, name)| *name == t))
            .map_or(0, |(t, _)| *t as i32),
        lowercase: flag("lowercase"),
        min_token_len: uint("min_token_len"),
        max_token_len: uint("max_token_len"),
        on_disk,
        stopwords: p.get("stopwords").and_then(stopwords),
        phrase_matching: flag("phrase_matching"),
        stemmer: p.get("stemmer").and_then(stemmer),
        ascii_folding: flag("ascii_folding"),
        enable_hnsw,
        ..Default::default()
    }
}

/// `memory` (`cold` / `cached` / `pinned`) as the gRPC enum.
fn memory(p: &PayloadSchemaParams) -> Option<i32> {
    let m = match p.get("memory")?.as_str()? {
        "cold" => grpc::Memory::Cold,
        "cached" => grpc::Memory::Cached,
        "pinned" => grpc::Memory::Pinned,
        _ => return None,
    };
    Some(m as i32)
}

/// `"english"` or `{"languages": [...], "custom": [...]}`.
fn stopwords(value: &Value) -> Option<grpc::StopwordsSet> {
    let strings = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
            .unwrap_or_default()
    };
    match value {
        Value::String(language) => Some(grpc::StopwordsSet {
            languages: vec![language.clone()],
            custom: Vec::new(),
        }),
        Value::Object(m) => Some(grpc::StopwordsSet {
            languages: strings(m.get("languages")),
            custom: strings(m.get("custom")),
        }),
        _ => None,
    }
}

/// `{"type": "snowball", "language": "english"}` or `{"type": "none"}`.
fn stemmer(value: &Value) -> Option<grpc::StemmingAlgorithm> {
    use grpc::stemming_algorithm::StemmingParams;
    let params = match value.get("type")?.as_str()? {
        "snowball" => StemmingParams::Snowball(grpc::SnowballParams {
            language: value.get("language")?.as_str()?.to_string(),
        }),
        "none" => StemmingParams::Disabled(grpc::DisabledStemmer {}),
        _ => return None,
    };
    Some(grpc::StemmingAlgorithm {
        stemming_params: Some(params),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn params(json: Value) -> PayloadSchemaParams {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn index_params_follow_the_type() {
        let keyword = index_params(&params(json!({"type": "keyword", "is_tenant": true})));
        assert_eq!(
            keyword.index_params,
            Some(IndexParams::KeywordIndexParams(grpc::KeywordIndexParams {
                is_tenant: Some(true),
                ..Default::default()
            }))
        );
        let text = index_params(&params(json!({
            "type": "text", "tokenizer": "prefix", "min_token_len": 2, "lowercase": false,
            "stopwords": {"languages": ["english"], "custom": ["foo"]},
            "stemmer": {"type": "snowball", "language": "english"}
        })));
        let Some(IndexParams::TextIndexParams(t)) = text.index_params else {
            panic!("not text params: {text:?}")
        };
        assert_eq!(t.tokenizer, grpc::TokenizerType::Prefix as i32);
        assert_eq!((t.min_token_len, t.lowercase), (Some(2), Some(false)));
        assert_eq!(t.stopwords.unwrap().custom, vec!["foo".to_string()]);
        assert!(t.stemmer.is_some());
        let info = schema_info(&PayloadIndexInfo {
            data_type: PayloadSchemaType::Integer,
            params: None,
            points: 12,
        });
        assert_eq!(info.data_type, grpc::PayloadSchemaType::Integer as i32);
        assert_eq!((info.params, info.points), (None, Some(12)));
    }
}
