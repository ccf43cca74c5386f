//! Phrase matching (`match: {phrase: "..."}`): the phrase's tokens, produced as for a document,
//! occur consecutively and in order in one of the point's texts.
//!
//! Qdrant keeps token positions only in indexes created with `phrase_matching: true`; on an index
//! without them a phrase finds nothing (no error; strict mode's unindexed-filter check asks for
//! "text (with phrase_matching: true)"). The values of an array are separate documents for
//! phrases (Qdrant puts a boundary token between them), so a phrase never spans two values.
//! Our postings carry no positions: the index narrows a phrase to the points holding all its
//! tokens and each candidate is then checked here against its stored text.

/// Whether `phrase` (non-empty) occurs as a contiguous run of `doc`.
pub fn contains_phrase(doc: &[String], phrase: &[String]) -> bool {
    !phrase.is_empty() && doc.len() >= phrase.len() && doc.windows(phrase.len()).any(|w| w == phrase)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn text_phrase_order_and_adjacency() {
        let doc = toks("the quick brown fox jumps over the lazy dog");
        assert!(contains_phrase(&doc, &toks("quick brown fox")));
        assert!(contains_phrase(&doc, &toks("brown")));
        assert!(!contains_phrase(&doc, &toks("brown quick")), "order");
        assert!(!contains_phrase(&doc, &toks("quick fox")), "adjacency");
        assert!(contains_phrase(&doc, &toks("the lazy")));
        assert!(!contains_phrase(&doc, &[]), "an empty phrase matches nothing");
        let very = toks("writing tests is very very very important");
        assert!(contains_phrase(&very, &toks("very very very")));
        assert!(!contains_phrase(&very, &toks("very very very very")));
        assert!(!contains_phrase(&toks("a"), &toks("a b")));
    }
}
