//! `stopwords`: tokens that are dropped from documents and queries. Qdrant's JSON
//! (`StopwordsInterface`) is a language name (`"english"`) or
//! `{"languages": ["english", "spanish"], "custom": ["foo"]}` (both fields optional).
//!
//! The lists are the ones Qdrant ships: NLTK's stop-word corpus for every language but Japanese,
//! the stopwords-iso list for Japanese (both from the `stop-words` crate), with the few
//! differences between those releases and Qdrant's copies applied ([`ADJUSTMENTS`]).
//! Stop words are lowercased when the index lowercases, and compared after lowercasing and
//! folding, before stemming (Qdrant's order).

use std::collections::{BTreeSet, HashSet};

use serde_json::{json, Value};

/// Qdrant's `Language`: name, alias, and the `stop-words` crate's code of its list.
const LANGUAGES: &[(Language, &str, &str, &str)] = &[
    (Language::Arabic, "arabic", "ar", "ar"),
    (Language::Azerbaijani, "azerbaijani", "az", "az"),
    (Language::Basque, "basque", "eu", "eu"),
    (Language::Bengali, "bengali", "bn", "bn"),
    (Language::Catalan, "catalan", "ca", "ca"),
    (Language::Chinese, "chinese", "zh", "zh"),
    (Language::Danish, "danish", "da", "da"),
    (Language::Dutch, "dutch", "nl", "nl"),
    (Language::English, "english", "en", "en"),
    (Language::Finnish, "finnish", "fi", "fi"),
    (Language::French, "french", "fr", "fr"),
    (Language::German, "german", "de", "de"),
    (Language::Greek, "greek", "el", "el"),
    (Language::Hebrew, "hebrew", "he", "he"),
    (Language::Hinglish, "hinglish", "hi-en", "hinglish"),
    (Language::Hungarian, "hungarian", "hu", "hu"),
    (Language::Indonesian, "indonesian", "id", "id"),
    (Language::Italian, "italian", "it", "it"),
    (Language::Japanese, "japanese", "jp", "ja"),
    (Language::Kazakh, "kazakh", "kk", "kk"),
    (Language::Nepali, "nepali", "ne", "ne"),
    (Language::Norwegian, "norwegian", "no", "no"),
    (Language::Portuguese, "portuguese", "pt", "pt"),
    (Language::Romanian, "romanian", "ro", "ro"),
    (Language::Russian, "russian", "ru", "ru"),
    (Language::Slovene, "slovene", "sl", "sl"),
    (Language::Spanish, "spanish", "es", "es"),
    (Language::Swedish, "swedish", "sv", "sv"),
    (Language::Tajik, "tajik", "tg", "tg"),
    (Language::Turkish, "turkish", "tr", "tr"),
];

/// Where Qdrant's lists differ from the crate's: (language, words Qdrant lacks, words it adds).
/// NLTK later added English contractions; Qdrant's Japanese list is an edited stopwords-iso one.
const ADJUSTMENTS: &[(Language, &[&str], &[&str])] = &[
    (
        Language::English,
        &[
            "he'd", "he'll", "he's", "i'd", "i'll", "i'm", "i've", "it'd", "it'll", "she'd", "she'll", "they'd",
            "they'll", "they're", "they've", "we'd", "we'll", "we're", "we've",
        ],
        &[],
    ),
    (Language::Catalan, &[], &["d"]),
    (
        Language::Japanese,
        &["なく", "彼女"],
        &[
            "いっ",
            "おい",
            "おけ",
            "かた",
            "つい",
            "よっ",
            "よる",
            "る",
            "人",
            "他",
            "共",
            "対し",
            "対する",
            "後",
            "方",
            "達",
            "関する",
        ],
    ),
];

/// The stop-word languages (Qdrant's `Language`), in Qdrant's (alphabetical) order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Language {
    Arabic,
    Azerbaijani,
    Basque,
    Bengali,
    Catalan,
    Chinese,
    Danish,
    Dutch,
    English,
    Finnish,
    French,
    German,
    Greek,
    Hebrew,
    Hinglish,
    Hungarian,
    Indonesian,
    Italian,
    Japanese,
    Kazakh,
    Nepali,
    Norwegian,
    Portuguese,
    Romanian,
    Russian,
    Slovene,
    Spanish,
    Swedish,
    Tajik,
    Turkish,
}

impl Language {
    /// A language by name or alias (`"english"`, `"en"`).
    pub fn parse(name: &str) -> Option<Language> {
        LANGUAGES
            .iter()
            .find(|(_, n, alias, _)| *n == name || *alias == name)
            .map(|(l, ..)| *l)
    }

    pub fn name(self) -> &'static str {
        self.entry().1
    }

    fn entry(self) -> &'static (Language, &'static str, &'static str, &'static str) {
        LANGUAGES
            .iter()
            .find(|(l, ..)| *l == self)
            .expect("every language is listed")
    }

    /// The language's stop words (as listed: not lowercased).
    pub fn words(self) -> impl Iterator<Item = &'static str> {
        let list = stop_words::lookup(self.entry().3).unwrap_or_default();
        let (removed, added): (&[&str], &[&str]) = ADJUSTMENTS
            .iter()
            .find(|(l, ..)| *l == self)
            .map_or((&[], &[]), |(_, r, a)| (*r, *a));
        list.iter()
            .copied()
            .filter(move |w| !removed.contains(w))
            .chain(added.iter().copied())
    }

    fn names() -> String {
        LANGUAGES.iter().map(|(_, n, ..)| *n).collect::<Vec<_>>().join(", ")
    }
}

/// The `stopwords` parameter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Stopwords {
    /// `"english"`
    Language(Language),
    /// `{"languages": [...], "custom": [...]}`
    Set {
        languages: Option<BTreeSet<Language>>,
        custom: Option<BTreeSet<String>>,
    },
}

impl Stopwords {
    pub fn from_json(value: &Value) -> Result<Stopwords, String> {
        let language = |v: &Value| -> Result<Language, String> {
            let name = v
                .as_str()
                .ok_or_else(|| format!("a stop-word language must be a string, got {v}"))?;
            Language::parse(name).ok_or_else(|| {
                format!(
                    "unknown stop-word language `{name}`, expected one of {}",
                    Language::names()
                )
            })
        };
        match value {
            Value::String(_) => language(value).map(Stopwords::Language),
            Value::Object(map) => {
                let list = |name: &str| -> Result<Option<&Vec<Value>>, String> {
                    match map.get(name) {
                        None | Some(Value::Null) => Ok(None),
                        Some(Value::Array(items)) => Ok(Some(items)),
                        Some(other) => Err(format!("stopwords `{name}` must be an array, got {other}")),
                    }
                };
                let languages = list("languages")?
                    .map(|items| items.iter().map(language).collect::<Result<BTreeSet<_>, _>>())
                    .transpose()?;
                let custom = list("custom")?
                    .map(|items| {
                        items
                            .iter()
                            .map(|w| {
                                w.as_str()
                                    .map(str::to_string)
                                    .ok_or_else(|| format!("custom stop words must be strings, got {w}"))
                            })
                            .collect::<Result<BTreeSet<_>, _>>()
                    })
                    .transpose()?;
                Ok(Stopwords::Set { languages, custom })
            }
            other => Err(format!(
                "expected a language name or {{\"languages\": [...], \"custom\": [...]}}, got {other}"
            )),
        }
    }

    /// The JSON Qdrant reports back: canonical names, sets sorted and deduplicated.
    pub fn to_json(&self) -> Value {
        match self {
            Stopwords::Language(l) => json!(l.name()),
            Stopwords::Set { languages, custom } => {
                let mut m = serde_json::Map::new();
                if let Some(ls) = languages {
                    m.insert("languages".into(), ls.iter().map(|l| l.name()).collect());
                }
                if let Some(c) = custom {
                    m.insert("custom".into(), c.iter().cloned().collect());
                }
                Value::Object(m)
            }
        }
    }
}

/// The set of stop words of an index.
#[derive(Debug, Default)]
pub struct StopwordFilter(HashSet<String>);

impl StopwordFilter {
    pub fn new(stopwords: Option<&Stopwords>, lowercase: bool) -> StopwordFilter {
        let mut set = HashSet::new();
        let mut add = |w: &str| {
            set.insert(if lowercase { w.to_lowercase() } else { w.to_string() });
        };
        match stopwords {
            None => {}
            Some(Stopwords::Language(l)) => l.words().for_each(&mut add),
            Some(Stopwords::Set { languages, custom }) => {
                for l in languages.iter().flatten() {
                    l.words().for_each(&mut add);
                }
                for w in custom.iter().flatten() {
                    add(w);
                }
            }
        }
        StopwordFilter(set)
    }

    pub fn contains(&self, token: &str) -> bool {
        !self.0.is_empty() && self.0.contains(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_stopwords_lists() {
        for (l, name, alias, _) in LANGUAGES {
            assert_eq!(Language::parse(name), Some(*l));
            assert_eq!(Language::parse(alias), Some(*l));
            assert!(l.words().count() > 20, "{name} has a list");
        }
        let english = StopwordFilter::new(Some(&Stopwords::Language(Language::English)), true);
        for w in ["the", "over", "a", "and", "is", "you're"] {
            assert!(english.contains(w), "{w}");
        }
        for w in ["fox", "quick", "i'm"] {
            assert!(!english.contains(w), "{w}");
        }
        let japanese = StopwordFilter::new(Some(&Stopwords::Language(Language::Japanese)), true);
        assert!(japanese.contains("の") && japanese.contains("関する") && !japanese.contains("彼女"));
    }

    #[test]
    fn text_stopwords_sets_and_case() {
        let set = Stopwords::from_json(&json!({"languages": ["en", "spanish"], "custom": ["I'd", "Foo"]})).unwrap();
        assert_eq!(
            set.to_json(),
            json!({"languages": ["english", "spanish"], "custom": ["Foo", "I'd"]})
        );
        let lower = StopwordFilter::new(Some(&set), true);
        assert!(lower.contains("the") && lower.contains("y") && lower.contains("de"));
        assert!(lower.contains("i'd") && lower.contains("foo") && !lower.contains("Foo"));
        let cased = StopwordFilter::new(Some(&set), false);
        assert!(cased.contains("Foo") && !cased.contains("foo"));
        let custom = Stopwords::from_json(&json!({"custom": ["x"]})).unwrap();
        assert_eq!(custom.to_json(), json!({"custom": ["x"]}));
        assert_eq!(
            Stopwords::from_json(&json!("english")).unwrap().to_json(),
            json!("english")
        );
        assert_eq!(Stopwords::from_json(&json!({})).unwrap().to_json(), json!({}));
        for bad in [
            json!("klingon"),
            json!(5),
            json!({"languages": "english"}),
            json!({"custom": [1]}),
        ] {
            assert!(Stopwords::from_json(&bad).is_err(), "{bad}");
        }
        assert!(!StopwordFilter::new(None, true).contains("the"));
    }
}
