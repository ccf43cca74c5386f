//! The `multilingual` tokenizer's word splitting.
//!
//! Qdrant segments with charabia (jieba dictionaries for Chinese, vaporetto for Japanese, a Thai
//! dictionary, Unicode word bounds for the rest) and normalises each word in charabia's lossy
//! way before its own token processing. This is a light approximation of the same steps:
//!
//! 1. Unicode word boundaries (UAX #29, `unicode-segmentation`). Space-separated scripts split as
//!    in charabia; text without spaces between words is split per character for Han ideographs,
//!    Hiragana and Thai (every ideograph is its own token, "今天是星期一" -> 今|天|是|星|期|一,
//!    where Qdrant's dictionaries give 今天|是|星期|一), while Katakana runs stay whole (テスト).
//!    Matching stays consistent because queries are split the same way: a query "星期" becomes
//!    the tokens 星, 期, so `text` finds documents with both characters and `phrase` documents
//!    with them adjacent.
//! 2. charabia's normalisation: compatibility decomposition (NFKD), nonspacing marks removed from
//!    Latin, Greek, Hebrew, Arabic and Thai words ("Café" -> "cafe"), æ/œ spelled out, and
//!    lowercasing whatever the index's `lowercase` says (charabia always lowercases); the marks
//!    that stay are composed again (NFC), so a decomposed and a precomposed spelling agree.
//! 3. Words are cut at apostrophes and other punctuation ("it's" -> it, s) and words without a
//!    letter (plain numbers) are dropped, as Qdrant drops them.

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;
use unicode_segmentation::UnicodeSegmentation;

/// Calls `f` with every normalised word of `text`, in order (before stop words, stemming and
/// length limits).
pub fn for_each_word(text: &str, mut f: impl FnMut(String)) {
    for segment in text.split_word_bounds() {
        let Some(first) = segment.chars().find(|c| c.is_alphanumeric()) else {
            continue;
        };
        let strip_marks = strips_marks(first);
        let mut normalized = String::with_capacity(segment.len());
        for c in segment.nfkd() {
            if strip_marks && is_combining_mark(c) {
                continue;
            }
            match c {
                'æ' | 'Æ' => normalized.push_str("ae"),
                'œ' | 'Œ' => normalized.push_str("oe"),
                c => normalized.extend(c.to_lowercase()),
            }
        }
        // Marks that stay (kana voicing, Cyrillic breves, Hangul jamo) are composed back.
        let normalized: String = normalized.nfc().collect();
        for word in normalized.split(|c: char| !(c.is_alphanumeric() || is_combining_mark(c))) {
            if word.chars().any(char::is_alphabetic) {
                f(word.to_string());
            }
        }
    }
}

/// Whether words of `c`'s script lose their nonspacing marks (charabia: Latin, Greek, Hebrew,
/// Arabic, Thai).
fn strips_marks(c: char) -> bool {
    matches!(c as u32,
        0x0041..=0x024F        // Latin, Latin-1, Latin Extended-A/B
        | 0x1E00..=0x1EFF      // Latin Extended Additional
        | 0xFF21..=0xFF5A      // fullwidth Latin
        | 0x0370..=0x03FF      // Greek
        | 0x1F00..=0x1FFF      // Greek Extended
        | 0x0590..=0x05FF      // Hebrew
        | 0xFB1D..=0xFB4F      // Hebrew presentation forms
        | 0x0600..=0x06FF      // Arabic
        | 0x0750..=0x077F
        | 0x08A0..=0x08FF
        | 0xFB50..=0xFDFF
        | 0xFE70..=0xFEFF
        | 0x0E00..=0x0E7F // Thai
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        for_each_word(text, |w| out.push(w));
        out
    }

    #[test]
    fn text_multilingual_segmentation() {
        assert_eq!(
            words("What are you waiting for?"),
            ["what", "are", "you", "waiting", "for"]
        );
        assert_eq!(
            words("It's Qdrant's code, 42 times"),
            ["it", "s", "qdrant", "s", "code", "times"]
        );
        assert_eq!(words("Café ÆRØ naïve"), ["cafe", "aerø", "naive"]);
        assert_eq!(words("Привет, мир!"), ["привет", "мир"]);
        assert_eq!(words("今天是星期一"), ["今", "天", "是", "星", "期", "一"]);
        assert_eq!(words("これはテストです"), ["こ", "れ", "は", "テスト", "で", "す"]);
        assert_eq!(words("中文English混合"), ["中", "文", "english", "混", "合"]);
        assert_eq!(words("한국어 텍스트"), ["한국어", "텍스트"]);
        // Thai: per character, vowel marks removed.
        assert_eq!(words("กัน"), ["ก", "น"]);
        // Greek accents go, Cyrillic letters keep theirs (й stays distinct from и).
        assert_eq!(words("Ἀθῆναι"), ["αθηναι"]);
        assert_ne!(words("йога"), words("иога"));
        assert_eq!(words("йога"), ["йога"]);
        assert_eq!(
            words("и\u{306}"),
            words("й"),
            "decomposed and precomposed spellings agree"
        );
    }
}
