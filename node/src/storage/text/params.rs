//! The parameters of a text index: the text options of `field_schema`
//! (`{"type": "text", "tokenizer": "word", "lowercase": true, ...}`, Qdrant 1.19's
//! `TextIndexParams`), with Qdrant's defaults.

use serde_json::{Map, Value};

use super::stemming::StemmerConfig;
use super::stopwords::Stopwords;

/// How a text is split into words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TokenizerType {
    /// Words (as `word`), each indexed under all its prefixes.
    Prefix,
    /// Split on whitespace only.
    Whitespace,
    /// Split on every character that is not alphanumeric (the default).
    #[default]
    Word,
    /// Unicode word segmentation with script-aware normalisation.
    Multilingual,
}

impl TokenizerType {
    pub const NAMES: &'static str = "prefix, whitespace, word, multilingual";

    pub fn parse(name: &str) -> Option<TokenizerType> {
        match name {
            "prefix" => Some(TokenizerType::Prefix),
            "whitespace" => Some(TokenizerType::Whitespace),
            "word" => Some(TokenizerType::Word),
            "multilingual" => Some(TokenizerType::Multilingual),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            TokenizerType::Prefix => "prefix",
            TokenizerType::Whitespace => "whitespace",
            TokenizerType::Word => "word",
            TokenizerType::Multilingual => "multilingual",
        }
    }
}

/// The options of a text index that change its tokens.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TextIndexParams {
    pub tokenizer: TokenizerType,
    /// Default `true`.
    pub lowercase: bool,
    /// Default `false`.
    pub ascii_folding: bool,
    /// Default `false`: `match: {phrase}` finds nothing on the index.
    pub phrase_matching: bool,
    pub min_token_len: Option<usize>,
    pub max_token_len: Option<usize>,
    pub stopwords: Option<Stopwords>,
    pub stemmer: Option<StemmerConfig>,
}

impl Default for TextIndexParams {
    fn default() -> Self {
        TextIndexParams {
            tokenizer: TokenizerType::Word,
            lowercase: true,
            ascii_folding: false,
            phrase_matching: false,
            min_token_len: None,
            max_token_len: None,
            stopwords: None,
            stemmer: None,
        }
    }
}

impl TextIndexParams {
    /// Reads a params object (`type` and options other than the text ones are ignored; a
    /// missing or `null` option takes its default).
    pub fn from_json(params: &Map<String, Value>) -> Result<TextIndexParams, String> {
        let get = |name: &str| params.get(name).filter(|v| !v.is_null());
        let flag = |name: &str, default: bool| -> Result<bool, String> {
            match get(name) {
                None => Ok(default),
                Some(v) => v
                    .as_bool()
                    .ok_or_else(|| format!("text index parameter `{name}` must be a boolean, got {v}")),
            }
        };
        let uint = |name: &str| -> Result<Option<usize>, String> {
            get(name)
                .map(|v| {
                    v.as_u64()
                        .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
                        .ok_or_else(|| format!("text index parameter `{name}` must be a non-negative integer, got {v}"))
                })
                .transpose()
        };
        let tokenizer = match get("tokenizer") {
            None => TokenizerType::Word,
            Some(v) => v.as_str().and_then(TokenizerType::parse).ok_or_else(|| {
                format!(
                    "text index parameter `tokenizer` must be one of {}, got {v}",
                    TokenizerType::NAMES
                )
            })?,
        };
        Ok(TextIndexParams {
            tokenizer,
            lowercase: flag("lowercase", true)?,
            ascii_folding: flag("ascii_folding", false)?,
            phrase_matching: flag("phrase_matching", false)?,
            min_token_len: uint("min_token_len")?,
            max_token_len: uint("max_token_len")?,
            stopwords: get("stopwords")
                .map(Stopwords::from_json)
                .transpose()
                .map_err(|e| format!("text index parameter `stopwords`: {e}"))?,
            stemmer: get("stemmer")
                .map(StemmerConfig::from_json)
                .transpose()
                .map_err(|e| format!("text index parameter `stemmer`: {e}"))?,
        })
    }

    /// The normalised form of the params object (as Qdrant reports it in `payload_schema`):
    /// `tokenizer` always present, stop-word and stemmer languages by their canonical names.
    pub fn normalize(params: &mut Map<String, Value>) -> Result<(), String> {
        let parsed = TextIndexParams::from_json(params)?;
        params.insert("tokenizer".into(), Value::from(parsed.tokenizer.name()));
        if let Some(s) = &parsed.stopwords {
            params.insert("stopwords".into(), s.to_json());
        }
        if let Some(s) = parsed.stemmer {
            params.insert("stemmer".into(), s.to_json());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::storage::text::stemming::SnowballLanguage;
    use crate::storage::text::stopwords::Language;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn text_params_defaults_and_options() {
        let d = TextIndexParams::from_json(&map(json!({"type": "text"}))).unwrap();
        assert_eq!(d, TextIndexParams::default());
        assert!(d.lowercase && !d.ascii_folding && !d.phrase_matching);
        let p = TextIndexParams::from_json(&map(json!({
            "type": "text", "tokenizer": "multilingual", "lowercase": false, "ascii_folding": true,
            "phrase_matching": true, "min_token_len": 2, "max_token_len": 10, "stopwords": "en",
            "stemmer": {"type": "snowball", "language": "english"}, "on_disk": true, "lowercase_extra": 1
        })))
        .unwrap();
        assert_eq!(p.tokenizer, TokenizerType::Multilingual);
        assert!(!p.lowercase && p.ascii_folding && p.phrase_matching);
        assert_eq!((p.min_token_len, p.max_token_len), (Some(2), Some(10)));
        assert_eq!(p.stopwords, Some(Stopwords::Language(Language::English)));
        assert_eq!(p.stemmer, Some(StemmerConfig::Snowball(SnowballLanguage::English)));
        for bad in [
            json!({"tokenizer": "bpe"}),
            json!({"lowercase": "yes"}),
            json!({"min_token_len": -1}),
            json!({"stopwords": "klingon"}),
            json!({"stemmer": {"type": "snowball"}}),
        ] {
            assert!(TextIndexParams::from_json(&map(bad.clone())).is_err(), "{bad}");
        }
    }

    #[test]
    fn text_params_normalize() {
        let mut m = map(json!({"type": "text", "stopwords": {"languages": ["en", "en"]},
                               "stemmer": {"type": "snowball", "language": "ru"}}));
        TextIndexParams::normalize(&mut m).unwrap();
        assert_eq!(
            Value::Object(m),
            json!({"type": "text", "tokenizer": "word", "stopwords": {"languages": ["english"]},
                   "stemmer": {"type": "snowball", "language": "russian"}})
        );
    }
}
