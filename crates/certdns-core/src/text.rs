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

#[cfg(test)]
mod tests {
    use super::*;

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
