//! `stemmer`: `{"type": "snowball", "language": "english"}` reduces every token to its Snowball
//! stem ("running" -> "run"), documents and queries alike; `{"type": "none"}` (or no `stemmer`)
//! leaves tokens as they are. Languages and their two-letter aliases are Qdrant's
//! `SnowballLanguage`; the algorithms come from the `qdrant-rust-stemmers` crate.

use std::fmt;

use serde_json::{json, Value};

/// The languages of Qdrant's `SnowballLanguage`, with the alias each also accepts.
const LANGUAGES: &[(SnowballLanguage, &str, &str)] = &[
    (SnowballLanguage::Arabic, "arabic", "ar"),
    (SnowballLanguage::Armenian, "armenian", "hy"),
    (SnowballLanguage::Danish, "danish", "da"),
    (SnowballLanguage::Dutch, "dutch", "nl"),
    (SnowballLanguage::English, "english", "en"),
    (SnowballLanguage::Finnish, "finnish", "fi"),
    (SnowballLanguage::French, "french", "fr"),
    (SnowballLanguage::German, "german", "de"),
    (SnowballLanguage::Greek, "greek", "el"),
    (SnowballLanguage::Hungarian, "hungarian", "hu"),
    (SnowballLanguage::Italian, "italian", "it"),
    (SnowballLanguage::Norwegian, "norwegian", "no"),
    (SnowballLanguage::Portuguese, "portuguese", "pt"),
    (SnowballLanguage::Romanian, "romanian", "ro"),
    (SnowballLanguage::Russian, "russian", "ru"),
    (SnowballLanguage::Spanish, "spanish", "es"),
    (SnowballLanguage::Swedish, "swedish", "sv"),
    (SnowballLanguage::Tamil, "tamil", "ta"),
    (SnowballLanguage::Turkish, "turkish", "tr"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SnowballLanguage {
    Arabic,
    Armenian,
    Danish,
    Dutch,
    English,
    Finnish,
    French,
    German,
    Greek,
    Hungarian,
    Italian,
    Norwegian,
    Portuguese,
    Romanian,
    Russian,
    Spanish,
    Swedish,
    Tamil,
    Turkish,
}

impl SnowballLanguage {
    /// A language by name or alias (`"english"`, `"en"`).
    pub fn parse(name: &str) -> Option<SnowballLanguage> {
        LANGUAGES
            .iter()
            .find(|(_, n, alias)| *n == name || *alias == name)
            .map(|(l, _, _)| *l)
    }

    pub fn name(self) -> &'static str {
        LANGUAGES.iter().find(|(l, _, _)| *l == self).map_or("", |(_, n, _)| n)
    }

    fn algorithm(self) -> rust_stemmers::Algorithm {
        use rust_stemmers::Algorithm as A;
        match self {
            SnowballLanguage::Arabic => A::Arabic,
            SnowballLanguage::Armenian => A::Armenian,
            SnowballLanguage::Danish => A::Danish,
            SnowballLanguage::Dutch => A::Dutch,
            SnowballLanguage::English => A::English,
            SnowballLanguage::Finnish => A::Finnish,
            SnowballLanguage::French => A::French,
            SnowballLanguage::German => A::German,
            SnowballLanguage::Greek => A::Greek,
            SnowballLanguage::Hungarian => A::Hungarian,
            SnowballLanguage::Italian => A::Italian,
            SnowballLanguage::Norwegian => A::Norwegian,
            SnowballLanguage::Portuguese => A::Portuguese,
            SnowballLanguage::Romanian => A::Romanian,
            SnowballLanguage::Russian => A::Russian,
            SnowballLanguage::Spanish => A::Spanish,
            SnowballLanguage::Swedish => A::Swedish,
            SnowballLanguage::Tamil => A::Tamil,
            SnowballLanguage::Turkish => A::Turkish,
        }
    }
}

/// The `stemmer` parameter (Qdrant's `StemmingAlgorithm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StemmerConfig {
    /// `{"type": "snowball", "language": ...}`
    Snowball(SnowballLanguage),
    /// `{"type": "none"}`: stemming explicitly off.
    Disabled,
}

impl StemmerConfig {
    pub fn from_json(value: &Value) -> Result<StemmerConfig, String> {
        let expected = || {
            let names: Vec<&str> = LANGUAGES.iter().map(|(_, n, _)| *n).collect();
            format!(
                "expected {{\"type\": \"snowball\", \"language\": <{}>}} or {{\"type\": \"none\"}}, got {value}",
                names.join("|")
            )
        };
        match value.get("type").and_then(Value::as_str) {
            Some("snowball") => value
                .get("language")
                .and_then(Value::as_str)
                .and_then(SnowballLanguage::parse)
                .map(StemmerConfig::Snowball)
                .ok_or_else(expected),
            Some("none") => Ok(StemmerConfig::Disabled),
            _ => Err(expected()),
        }
    }

    /// The JSON Qdrant reports back (canonical language name).
    pub fn to_json(self) -> Value {
        match self {
            StemmerConfig::Snowball(l) => json!({"type": "snowball", "language": l.name()}),
            StemmerConfig::Disabled => json!({"type": "none"}),
        }
    }
}

/// A ready Snowball stemmer.
pub struct Stemmer {
    language: SnowballLanguage,
    inner: rust_stemmers::Stemmer,
}

impl Stemmer {
    /// `None` when stemming is disabled.
    pub fn new(config: StemmerConfig) -> Option<Stemmer> {
        match config {
            StemmerConfig::Snowball(language) => Some(Stemmer {
                language,
                inner: rust_stemmers::Stemmer::create(language.algorithm()),
            }),
            StemmerConfig::Disabled => None,
        }
    }

    pub fn stem(&self, token: String) -> String {
        match self.inner.stem(&token) {
            std::borrow::Cow::Borrowed(s) if s.len() == token.len() => token,
            stemmed => stemmed.into_owned(),
        }
    }
}

impl fmt::Debug for Stemmer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Stemmer(snowball, {})", self.language.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_stemming_snowball() {
        let english = Stemmer::new(StemmerConfig::Snowball(SnowballLanguage::English)).unwrap();
        let stem = |w: &str| english.stem(w.to_string());
        assert_eq!(stem("running"), "run");
        assert_eq!(stem("run"), "run");
        assert_eq!(stem("interestingly"), "interest");
        assert_eq!(stem("proceeding"), "proceed");
        assert_eq!(stem("living"), "live");
        let german = Stemmer::new(StemmerConfig::Snowball(SnowballLanguage::German)).unwrap();
        assert_eq!(german.stem("häuser".into()), german.stem("haus".into()));
        assert!(Stemmer::new(StemmerConfig::Disabled).is_none());
    }

    #[test]
    fn text_stemming_json() {
        let c = StemmerConfig::from_json(&json!({"type": "snowball", "language": "en"})).unwrap();
        assert_eq!(c, StemmerConfig::Snowball(SnowballLanguage::English));
        assert_eq!(c.to_json(), json!({"type": "snowball", "language": "english"}));
        let none = StemmerConfig::from_json(&json!({"type": "none"})).unwrap();
        assert_eq!(none.to_json(), json!({"type": "none"}));
        assert!(StemmerConfig::from_json(&json!({"type": "snowball", "language": "klingon"})).is_err());
        assert!(StemmerConfig::from_json(&json!({"type": "porter"})).is_err());
        assert!(StemmerConfig::from_json(&json!("english")).is_err());
        for (l, name, alias) in LANGUAGES {
            assert_eq!(SnowballLanguage::parse(name), Some(*l));
            assert_eq!(SnowballLanguage::parse(alias), Some(*l));
            assert!(Stemmer::new(StemmerConfig::Snowball(*l)).is_some());
        }
    }
}
