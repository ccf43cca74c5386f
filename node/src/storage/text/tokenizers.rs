//! The tokenizers of a text index: a text becomes words (`word`, `whitespace`, `prefix`,
//! `multilingual`), and every word goes through Qdrant's token processing, in this order:
//! ASCII folding (if enabled), lowercasing (default), stop-word removal, stemming, then the
//! length limits (`min_token_len` / `max_token_len`, in characters).
//!
//! Documents and queries differ only for `prefix`: a document word is indexed under each of its
//! prefixes from `min_token_len` (default 1) to `max_token_len` characters, while a query word
//! is one token cut to `max_token_len` (and not checked against stop words, so "the" still finds
//! "theory").

use super::folding::fold_to_ascii;
use super::multilingual;
use super::params::{TextIndexParams, TokenizerType};
use super::stemming::Stemmer;
use super::stopwords::StopwordFilter;

/// A text index's tokenizer: its parameters with the stop-word set and stemmer built.
#[derive(Debug)]
pub struct Tokenizer {
    params: TextIndexParams,
    stopwords: StopwordFilter,
    stemmer: Option<Stemmer>,
}

impl Tokenizer {
    pub fn new(params: TextIndexParams) -> Tokenizer {
        Tokenizer {
            stopwords: StopwordFilter::new(params.stopwords.as_ref(), params.lowercase),
            stemmer: params.stemmer.and_then(Stemmer::new),
            params,
        }
    }

    pub fn params(&self) -> &TextIndexParams {
        &self.params
    }

    /// The tokens a stored text is indexed under, in order (repeats kept).
    pub fn doc_tokens(&self, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        match self.params.tokenizer {
            TokenizerType::Word => {
                for w in word_split(text) {
                    out.extend(self.process(w.to_string(), true));
                }
            }
            TokenizerType::Whitespace => {
                for w in text.split_whitespace() {
                    out.extend(self.process(w.to_string(), true));
                }
            }
            TokenizerType::Multilingual => {
                multilingual::for_each_word(text, |w| out.extend(self.process(w, true)));
            }
            TokenizerType::Prefix => {
                let min = self.params.min_token_len.unwrap_or(1).max(1);
                let max = self.params.max_token_len.unwrap_or(usize::MAX);
                for w in word_split(text) {
                    let Some(word) = self.process(w.to_string(), false) else {
                        continue;
                    };
                    let ends: Vec<usize> = word.char_indices().map(|(i, _)| i).skip(min).collect();
                    let mut n = min;
                    for end in ends {
                        if n > max {
                            break;
                        }
                        out.push(word[..end].to_string());
                        n += 1;
                    }
                    if n <= max {
                        out.push(word);
                    }
                }
            }
        }
        out
    }

    /// The tokens of a `text` / `text_any` query, in order.
    pub fn query_tokens(&self, text: &str) -> Vec<String> {
        if self.params.tokenizer != TokenizerType::Prefix {
            return self.doc_tokens(text);
        }
        let mut out = Vec::new();
        for w in word_split(text) {
            let mut word = fold_if(self.params.ascii_folding, w.to_string());
            if self.params.lowercase {
                word = word.to_lowercase();
            }
            if let Some(stemmer) = &self.stemmer {
                word = stemmer.stem(word);
            }
            let chars = word.chars().count();
            if self.params.min_token_len.is_some_and(|m| chars < m) {
                continue;
            }
            match self.params.max_token_len {
                Some(max) if chars > max => out.push(word.chars().take(max).collect()),
                _ => out.push(word),
            }
        }
        out
    }

    /// Qdrant's token processing; `None` drops the token.
    fn process(&self, token: String, check_max: bool) -> Option<String> {
        if token.is_empty() {
            return None;
        }
        let mut token = fold_if(self.params.ascii_folding, token);
        if self.params.lowercase {
            token = token.to_lowercase();
        }
        if self.stopwords.contains(&token) {
            return None;
        }
        if let Some(stemmer) = &self.stemmer {
            token = stemmer.stem(token);
        }
        let chars = token.chars().count();
        if self.params.min_token_len.is_some_and(|m| chars < m)
            || (check_max && self.params.max_token_len.is_some_and(|m| chars > m))
        {
            return None;
        }
        Some(token)
    }
}

/// `word` splitting: maximal runs of alphanumeric characters.
fn word_split(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty())
}

fn fold_if(fold: bool, token: String) -> String {
    if fold && !token.is_ascii() {
        fold_to_ascii(&token).into_owned()
    } else {
        token
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn tokenizer(v: serde_json::Value) -> Tokenizer {
        Tokenizer::new(TextIndexParams::from_json(v.as_object().unwrap()).unwrap())
    }

    #[test]
    fn text_tokenizers_word_whitespace_lengths() {
        let word = tokenizer(json!({}));
        assert_eq!(word.doc_tokens("Hello, World! it's"), ["hello", "world", "it", "s"]);
        assert_eq!(word.doc_tokens("hello, мир! Привет"), ["hello", "мир", "привет"]);
        let ws = tokenizer(json!({"tokenizer": "whitespace", "lowercase": false}));
        assert_eq!(ws.doc_tokens("Foo-bar  baz"), ["Foo-bar", "baz"]);
        let lens = tokenizer(json!({"min_token_len": 2, "max_token_len": 4}));
        assert_eq!(lens.doc_tokens("a bb ccc ddddd"), ["bb", "ccc"]);
        assert_eq!(lens.query_tokens("a bb ddddd"), ["bb"]);
        let cased = tokenizer(json!({"lowercase": false}));
        assert_eq!(cased.doc_tokens("Hello hello"), ["Hello", "hello"]);
    }

    #[test]
    fn text_tokenizers_prefix() {
        let prefix = tokenizer(json!({"tokenizer": "prefix", "min_token_len": 2, "max_token_len": 4}));
        assert_eq!(prefix.doc_tokens("Héllo a"), ["hé", "hél", "héll"]);
        assert_eq!(prefix.query_tokens("h HELLO hel"), ["hell", "hel"]);
        let short = tokenizer(json!({"tokenizer": "prefix", "min_token_len": 1, "max_token_len": 4}));
        assert_eq!(
            short.doc_tokens("hello, мир!"),
            ["h", "he", "hel", "hell", "м", "ми", "мир"]
        );
        let open = tokenizer(json!({"tokenizer": "prefix"}));
        assert_eq!(open.doc_tokens("abc"), ["a", "ab", "abc"]);
        assert_eq!(open.query_tokens("ABC"), ["abc"]);
        // Stop words drop whole document words, never query prefixes.
        let stop = tokenizer(json!({"tokenizer": "prefix", "stopwords": {"custom": ["the"]}}));
        assert_eq!(
            stop.doc_tokens("the theory"),
            ["t", "th", "the", "theo", "theor", "theory"]
        );
        assert_eq!(stop.query_tokens("the"), ["the"]);
        // Stemmed words are cut into prefixes.
        let stem = tokenizer(json!({"tokenizer": "prefix", "min_token_len": 3, "max_token_len": 4,
                                    "stemmer": {"type": "snowball", "language": "english"}}));
        assert_eq!(
            stem.doc_tokens("interestingly proceeding living"),
            ["int", "inte", "pro", "proc", "liv", "live"]
        );
    }

    #[test]
    fn text_tokenizers_stopwords_stemming_folding() {
        let stop = tokenizer(json!({"stopwords": "english"}));
        assert_eq!(
            stop.doc_tokens("The quick brown fox jumps over the lazy dog"),
            ["quick", "brown", "fox", "jumps", "lazy", "dog"]
        );
        let custom = tokenizer(json!({"lowercase": false, "stopwords": {"custom": ["the", "The", "LAZY"]}}));
        assert_eq!(custom.doc_tokens("The lazy the LAZY dog"), ["lazy", "dog"]);
        let stem = tokenizer(json!({"stemmer": {"type": "snowball", "language": "english"}}));
        assert_eq!(stem.doc_tokens("Running runs"), ["run", "run"]);
        assert_eq!(stem.query_tokens("run"), ["run"]);
        let fold = tokenizer(json!({"ascii_folding": true}));
        assert_eq!(
            fold.doc_tokens("ação café jalapeño Über"),
            ["acao", "cafe", "jalapeno", "uber"]
        );
        assert_eq!(tokenizer(json!({})).doc_tokens("Café"), ["café"]);
        let fold_prefix = tokenizer(json!({"tokenizer": "prefix", "ascii_folding": true, "max_token_len": 4}));
        assert_eq!(fold_prefix.doc_tokens("ação"), ["a", "ac", "aca", "acao"]);
        assert_eq!(fold_prefix.query_tokens("AÇÃ"), ["aca"]);
    }

    #[test]
    fn text_tokenizers_multilingual() {
        let multi = tokenizer(json!({"tokenizer": "multilingual"}));
        assert_eq!(
            multi.doc_tokens("This is english text. It's being used"),
            ["this", "is", "english", "text", "it", "s", "being", "used"]
        );
        assert_eq!(multi.doc_tokens("Dies ist ein Test"), ["dies", "ist", "ein", "test"]);
        assert_eq!(multi.doc_tokens("今天是星期一"), ["今", "天", "是", "星", "期", "一"]);
        let stop = tokenizer(json!({"tokenizer": "multilingual", "stopwords": {"custom": ["是"]}}));
        assert_eq!(stop.doc_tokens("今天是星期一"), ["今", "天", "星", "期", "一"]);
        let stem = tokenizer(json!({"tokenizer": "multilingual",
                                    "stemmer": {"type": "snowball", "language": "english"}}));
        assert_eq!(stem.doc_tokens("Testing this"), ["test", "this"]);
        // charabia lowercases and strips Latin accents whatever `lowercase` says.
        let cased = tokenizer(json!({"tokenizer": "multilingual", "lowercase": false}));
        assert_eq!(cased.doc_tokens("Café"), ["cafe"]);
    }
}
