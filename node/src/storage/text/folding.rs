//! `ascii_folding: true`: accented Latin letters and ASCII look-alikes become plain ASCII
//! ("Café" -> "Cafe", "ação" -> "acao", "Straße" -> "Strasse"), the way Lucene's
//! ASCIIFoldingFilter (which Qdrant follows) treats them.
//!
//! A character is folded when its compatibility decomposition (NFKD) without combining marks is
//! ASCII (é, ñ, Å, ﬁ, fullwidth Ａ, ², ①), or when it is one of the Latin letters and punctuation
//! that do not decompose (ß, æ, ø, ł, đ, þ, œ, curly quotes, dashes; [`special`]). Everything else
//! is kept as it is: other scripts (Cyrillic й, Greek ά, CJK) are not transliterated.

use std::borrow::Cow;

use unicode_normalization::char::{decompose_compatible, is_combining_mark};

/// `text` with every foldable character replaced by its ASCII form.
pub fn fold_to_ascii(text: &str) -> Cow<'_, str> {
    if text.is_ascii() {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        fold_char(c, &mut out);
    }
    Cow::Owned(out)
}

fn fold_char(c: char, out: &mut String) {
    if c.is_ascii() {
        out.push(c);
        return;
    }
    if let Some(s) = special(c) {
        out.push_str(s);
        return;
    }
    let mut base = String::new();
    decompose_compatible(c, |d| {
        if !is_combining_mark(d) {
            base.push(d);
        }
    });
    if !base.is_empty() && base.is_ascii() {
        out.push_str(&base);
    } else {
        out.push(c);
    }
}

/// Letters and punctuation without a decomposition into ASCII.
fn special(c: char) -> Option<&'static str> {
    Some(match c {
        'ß' | 'ẞ' => "ss",
        'Æ' | 'Ǽ' | 'Ǣ' => "AE",
        'æ' | 'ǽ' | 'ǣ' => "ae",
        'Œ' => "OE",
        'œ' => "oe",
        'Ø' | 'Ǿ' | 'Ɵ' => "O",
        'ø' | 'ǿ' | 'ɵ' => "o",
        'Đ' | 'Ð' | 'Ɖ' | 'Ɗ' => "D",
        'đ' | 'ð' | 'ɖ' | 'ɗ' | 'ȡ' => "d",
        'Ł' | 'Ƚ' | 'Ŀ' => "L",
        'ł' | 'ƚ' | 'ŀ' | 'ɫ' | 'ɬ' | 'ɭ' => "l",
        'Þ' => "TH",
        'þ' => "th",
        'Ħ' => "H",
        'ħ' => "h",
        'Ŧ' | 'Ƭ' | 'Ʈ' => "T",
        'ŧ' | 'ƭ' | 'ʈ' | 'ȶ' => "t",
        'ı' => "i",
        'Ɨ' => "I",
        'ɨ' => "i",
        'ĸ' => "q",
        'Ŋ' => "N",
        'ŋ' => "n",
        'Ɓ' | 'Ƀ' => "B",
        'ƀ' | 'ɓ' => "b",
        'Ƈ' | 'Ȼ' => "C",
        'ƈ' | 'ȼ' | 'ɕ' => "c",
        'Ɛ' | 'Ɇ' => "E",
        'ɛ' | 'ɇ' | 'ə' => "e",
        'Ƒ' => "F",
        'ƒ' => "f",
        'Ɠ' | 'Ǥ' => "G",
        'ɠ' | 'ǥ' | 'ɡ' => "g",
        'Ƙ' => "K",
        'ƙ' => "k",
        'Ɲ' => "N",
        'ɲ' | 'ƞ' => "n",
        'Ƥ' => "P",
        'ƥ' => "p",
        'Ɍ' => "R",
        'ɍ' | 'ɼ' | 'ɽ' | 'ɾ' => "r",
        'ʂ' | 'ȿ' => "s",
        'Ʉ' => "U",
        'ʉ' => "u",
        'Ʋ' => "V",
        'ʋ' => "v",
        'Ƴ' | 'Ɏ' => "Y",
        'ƴ' | 'ɏ' => "y",
        'Ƶ' | 'Ȥ' => "Z",
        'ƶ' | 'ȥ' | 'ʐ' | 'ʑ' => "z",
        'Ĳ' => "IJ",
        'ĳ' => "ij",
        '‘' | '’' | '‚' | '‛' | '′' | '‹' | '›' => "'",
        '“' | '”' | '„' | '‟' | '″' | '«' | '»' => "\"",
        '‐' | '‑' | '‒' | '–' | '—' | '―' | '−' => "-",
        '…' => "...",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_folding_accents_and_special_letters() {
        assert_eq!(fold_to_ascii("Café"), "Cafe");
        assert_eq!(fold_to_ascii("ação jalapeño Über"), "acao jalapeno Uber");
        assert_eq!(
            fold_to_ascii("Straße Ærø Łódź þorn œuvre"),
            "Strasse AEro Lodz thorn oeuvre"
        );
        assert_eq!(fold_to_ascii("ﬁne Ａ² ①"), "fine A2 1");
        assert_eq!(fold_to_ascii("“quoted” – dash"), "\"quoted\" - dash");
        // Other scripts are kept, including their accented letters.
        assert_eq!(fold_to_ascii("мир йога ά 日本"), "мир йога ά 日本");
        assert!(matches!(fold_to_ascii("plain"), Cow::Borrowed("plain")));
    }
}
