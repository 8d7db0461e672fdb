//! Free text customers give us (a registration's subject, a key's name): what may
//! never be in it.

use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// Whether `c` is a control character (`Cc`) or an invisible format character
/// (`Cf`: right-to-left overrides such as U+202E, zero-width joiners, the BOM).
/// Format characters make a string display as something it is not
/// (`moc.elpmaxe` shown as `example.com`), so text shown back to people or used
/// as a name refuses both.
pub fn is_control_or_format(c: char) -> bool {
    c.is_control() || c.general_category() == GeneralCategory::Format
}

/// Whether `s` holds any [`is_control_or_format`] character.
pub fn has_control_or_format(s: &str) -> bool {
    s.chars().any(is_control_or_format)
}

/// A regex character class of the characters `matches` selects (`negated`: of
/// all others), as ranges: `\uXXXX` escapes in the Basic Multilingual Plane, the
/// characters themselves above it (understood by ECMA-262 with the `u` flag and by
/// Python's `re`, which have no common escape for them). For OpenAPI patterns
/// built from the same predicates the server uses, so the two cannot drift apart.
pub fn regex_class(matches: impl Fn(char) -> bool, negated: bool) -> String {
    let mut ranges: Vec<(char, char)> = Vec::new();
    for c in (0..=u32::from(char::MAX)).filter_map(char::from_u32).filter(|&c| matches(c)) {
        match ranges.last_mut() {
            Some((_, end)) if u32::from(*end) + 1 == u32::from(c) => *end = c,
            _ => ranges.push((c, c)),
        }
    }
    let one = |c: char| if u32::from(c) <= 0xFFFF { format!("\\u{:04x}", u32::from(c)) } else { c.to_string() };
    let body: String =
        ranges.iter().map(|&(a, b)| if a == b { one(a) } else { format!("{}-{}", one(a), one(b)) }).collect();
    format!("[{}{body}]", if negated { "^" } else { "" })
}

/// The pattern of text that is trimmed (Unicode white space) and must then hold
/// 1 to `max_chars` characters, none of them one `never` selects.
pub fn trimmed_text_pattern(never: impl Fn(char) -> bool + Copy, max_chars: usize) -> String {
    let space = char::is_whitespace;
    let around = regex_class(space, false);
    let edge = regex_class(|c| never(c) || space(c), true);
    let inner = regex_class(never, true);
    format!("^{around}*{edge}({inner}{{0,{}}}{edge})?{around}*$", max_chars.saturating_sub(2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn character_classes_are_ranges() {
        assert_eq!(regex_class(|c| c.is_ascii_digit() || c == 'x', false), r"[\u0030-\u0039\u0078]");
        assert_eq!(regex_class(|c| c == '\u{E0001}', true), "[^\u{E0001}]");
        let p = trimmed_text_pattern(|c| c == '!', 80);
        assert!(p.starts_with("^[") && p.contains("{0,78}"), "{p}");
    }

    #[test]
    fn controls_and_format_characters() {
        for bad in ["a\u{202e}b", "a\u{200b}b", "\u{feff}x", "a\u{7}b", "a\nb", "a\u{2066}b", "a\u{ad}b"] {
            assert!(has_control_or_format(bad), "{bad:?}");
        }
        for good in ["www.example.com", "*.example.com", "bücher.example", "例え.jp", "web servers (eu)"] {
            assert!(!has_control_or_format(good), "{good:?}");
        }
    }
}
