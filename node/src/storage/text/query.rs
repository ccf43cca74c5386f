//! Full-text conditions against a point's texts: `match: {text}` (every query token),
//! `{text_any}` (some query token) and `{phrase}` (see [`super::phrase`]).
//!
//! As in Qdrant, a query without tokens (empty, or only stop words) matches nothing, and an index
//! looks at the point as a whole: `text` holds when every query token occurs in some value of the
//! field (the point's document is the union of its values' tokens), while a phrase must occur
//! within one value.

use std::collections::HashSet;

use super::phrase::contains_phrase;
use super::tokenizers::Tokenizer;
use crate::model::filter::Match;

/// A full-text condition, tokenised by the field's tokenizer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextQuery {
    /// `text`: every token (sorted, deduplicated, non-empty).
    All(Vec<String>),
    /// `text_any`: at least one token (sorted, deduplicated, non-empty).
    Any(Vec<String>),
    /// `phrase`: these tokens in a row (non-empty).
    Phrase(Vec<String>),
    /// Can match nothing.
    Nothing,
}

impl TextQuery {
    /// The query of a full-text `match` (`None` for the other kinds of match).
    pub fn parse(tokenizer: &Tokenizer, m: &Match) -> Option<TextQuery> {
        let set = |mut tokens: Vec<String>| {
            tokens.sort_unstable();
            tokens.dedup();
            tokens
        };
        let query = match m {
            Match::Text(q) => TextQuery::All(set(tokenizer.query_tokens(q))),
            Match::TextAny(q) => TextQuery::Any(set(tokenizer.query_tokens(q))),
            Match::Phrase(q) if tokenizer.params().phrase_matching => TextQuery::Phrase(tokenizer.doc_tokens(q)),
            Match::Phrase(_) => TextQuery::Nothing,
            _ => return None,
        };
        Some(match query {
            TextQuery::All(t) | TextQuery::Any(t) | TextQuery::Phrase(t) if t.is_empty() => TextQuery::Nothing,
            q => q,
        })
    }

    /// Whether the texts of one point (the string values of the field) satisfy the query.
    pub fn matches<'a>(&self, tokenizer: &Tokenizer, texts: impl IntoIterator<Item = &'a str>) -> bool {
        match self {
            TextQuery::Nothing => false,
            TextQuery::All(query) => {
                let mut missing: HashSet<&str> = query.iter().map(String::as_str).collect();
                for text in texts {
                    for token in tokenizer.doc_tokens(text) {
                        missing.remove(token.as_str());
                        if missing.is_empty() {
                            return true;
                        }
                    }
                }
                false
            }
            TextQuery::Any(query) => texts.into_iter().any(|text| {
                tokenizer
                    .doc_tokens(text)
                    .iter()
                    .any(|t| query.binary_search(t).is_ok())
            }),
            TextQuery::Phrase(phrase) => texts
                .into_iter()
                .any(|text| contains_phrase(&tokenizer.doc_tokens(text), phrase)),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::storage::text::TextIndexParams;

    fn tokenizer(v: serde_json::Value) -> Tokenizer {
        Tokenizer::new(TextIndexParams::from_json(v.as_object().unwrap()).unwrap())
    }

    fn check(t: &Tokenizer, m: Match, texts: &[&str]) -> bool {
        TextQuery::parse(t, &m).unwrap().matches(t, texts.iter().copied())
    }

    #[test]
    fn text_query_all_any_phrase() {
        let t = tokenizer(json!({"phrase_matching": true}));
        let doc = ["Hello, wonderful World!"];
        assert!(check(&t, Match::Text("world HELLO".into()), &doc));
        assert!(!check(&t, Match::Text("wonder".into()), &doc), "tokens, not substrings");
        assert!(!check(&t, Match::Text("hello there".into()), &doc));
        assert!(check(&t, Match::TextAny("there world".into()), &doc));
        assert!(!check(&t, Match::TextAny("there wonder".into()), &doc));
        assert!(check(&t, Match::Phrase("hello wonderful".into()), &doc));
        assert!(!check(&t, Match::Phrase("world hello".into()), &doc));
        // Nothing to look for matches nothing.
        for m in [
            Match::Text("".into()),
            Match::TextAny(" ,".into()),
            Match::Phrase("".into()),
        ] {
            assert_eq!(TextQuery::parse(&t, &m), Some(TextQuery::Nothing));
        }
        assert_eq!(TextQuery::parse(&t, &Match::Prefix("x".into())), None);
        // `text` sees the point's values together; a phrase stays within one value.
        let arr = ["red apple", "green pear"];
        assert!(check(&t, Match::Text("red pear".into()), &arr));
        assert!(!check(&t, Match::Phrase("apple green".into()), &arr));
        assert!(check(&t, Match::Phrase("green pear".into()), &arr));
    }

    #[test]
    fn text_query_phrase_needs_phrase_matching() {
        let t = tokenizer(json!({}));
        assert_eq!(
            TextQuery::parse(&t, &Match::Phrase("a b".into())),
            Some(TextQuery::Nothing)
        );
        assert!(!check(&t, Match::Phrase("hello world".into()), &["hello world"]));
    }

    #[test]
    fn text_query_stemming_and_stopwords() {
        let t = tokenizer(json!({"stopwords": "english", "phrase_matching": true,
                                 "stemmer": {"type": "snowball", "language": "english"}}));
        let doc = ["The runner was running to the shops"];
        assert!(check(&t, Match::Text("run".into()), &doc), "running ~ run");
        assert!(
            check(&t, Match::Text("the shop".into()), &doc),
            "stop word ignored, shop ~ shops"
        );
        assert_eq!(
            TextQuery::parse(&t, &Match::Text("the of".into())),
            Some(TextQuery::Nothing)
        );
        // Stop words leave no gap: "running to the shops" is the phrase "run shop".
        assert!(check(&t, Match::Phrase("runs to shop".into()), &doc));
        assert!(!check(&t, Match::Phrase("shop run".into()), &doc));
    }
}
