//! Full-text tokenisation and matching, as Qdrant 1.19's text index does it.
//!
//! * [`params`]: the index options (`tokenizer`, `lowercase`, `min_token_len`, `max_token_len`,
//!   `ascii_folding`, `phrase_matching`, `stopwords`, `stemmer`) with Qdrant's JSON and defaults.
//! * [`tokenizers`]: text -> tokens for documents and queries ([`Tokenizer`]), using
//!   [`multilingual`] word segmentation, [`folding`], [`stopwords`] and [`stemming`].
//! * [`query`] and [`phrase`]: `match: {text | text_any | phrase}` against a point's texts.
//!
//! A field without a text index is matched as if it had a default one (word tokenizer,
//! lowercase) that also allows phrases: [`unindexed_tokenizer`].

pub mod folding;
pub mod multilingual;
pub mod params;
pub mod phrase;
pub mod query;
pub mod stemming;
pub mod stopwords;
pub mod tokenizers;

use std::sync::LazyLock;

pub use params::{TextIndexParams, TokenizerType};
pub use query::TextQuery;
pub use tokenizers::Tokenizer;

/// The tokenizer full-text conditions use on a field without a text index (Qdrant >= 1.19.1:
/// the default word tokenizer, lowercased; phrases work without positions).
pub fn unindexed_tokenizer() -> &'static Tokenizer {
    static DEFAULT: LazyLock<Tokenizer> = LazyLock::new(|| {
        Tokenizer::new(TextIndexParams {
            phrase_matching: true,
            ..TextIndexParams::default()
        })
    });
    &DEFAULT
}
