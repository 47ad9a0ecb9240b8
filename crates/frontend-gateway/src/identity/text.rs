//! Emails and names as the identity wing accepts them, wherever they come from (a registration
//! form, an identity provider): one definition of an email's shape and of an invisible
//! character.

/// The longest display name kept.
pub const MAX_NAME_CHARS: usize = 100;

/// `raw`, trimmed, when it has the shape of an email address (3 to 254 characters, no
/// whitespace, no control or invisible format characters, a non-empty local part and domain).
pub fn email(raw: &str) -> Option<String> {
    let email = raw.trim();
    let valid = (3..=254).contains(&email.chars().count())
        && !email
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || is_format(c))
        && email
            .rsplit_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty());
    valid.then(|| email.to_owned())
}

/// The domain of an email [`email`] accepted, lower-cased.
pub fn domain(email: &str) -> String {
    email
        .rsplit_once('@')
        .map(|(_, d)| d.to_ascii_lowercase())
        .unwrap_or_default()
}

/// A name from an identity provider, made fit to show: control and invisible format
/// characters removed, whitespace runs made one space, trimmed, cut to [`MAX_NAME_CHARS`].
/// `None` when nothing is left.
pub fn clean_name(raw: &str) -> Option<String> {
    let mut out = String::new();
    let mut space = false;
    for c in raw.chars() {
        if c.is_whitespace() {
            space = !out.is_empty();
            continue;
        }
        if c.is_control() || is_format(c) {
            continue;
        }
        if space {
            out.push(' ');
            space = false;
        }
        out.push(c);
    }
    let name: String = out.chars().take(MAX_NAME_CHARS).collect();
    let name = name.trim_end().to_owned();
    (!name.is_empty()).then_some(name)
}

/// Unicode's format characters (general category Cf, Unicode 15.1): invisible, and some
/// (bidirectional overrides) reorder what is shown around them.
pub fn is_format(c: char) -> bool {
    matches!(
        c as u32,
        0x00AD
            | 0x0600..=0x0605
            | 0x061C
            | 0x06DD
            | 0x070F
            | 0x0890..=0x0891
            | 0x08E2
            | 0x180E
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x2064
            | 0x2066..=0x206F
            | 0xFEFF
            | 0xFFF9..=0xFFFB
            | 0x110BD
            | 0x110CD
            | 0x13430..=0x1343F
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0001
            | 0xE0020..=0xE007F
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_shaped() {
        assert_eq!(
            email("  ada@example.com ").as_deref(),
            Some("ada@example.com")
        );
        for bad in [
            "",
            "ada",
            "@example.com",
            "ada@",
            "a da@example.com",
            "ada\u{0}@x.io",
            "ada\u{202e}@x.io",
        ] {
            assert_eq!(email(bad), None, "{bad:?}");
        }
        assert_eq!(email(&format!("{}@x.io", "a".repeat(250))), None);
        assert_eq!(domain("Ada@Example.COM"), "example.com");
    }

    #[test]
    fn provider_names_lose_invisible_characters_and_are_cut() {
        assert_eq!(
            clean_name(" Ada \u{202e}Love\u{200b}lace\u{0} ").as_deref(),
            Some("Ada Lovelace")
        );
        assert_eq!(clean_name("a\n\tb").as_deref(), Some("a b"));
        assert_eq!(clean_name("\u{200b}\u{0}  "), None);
        assert_eq!(
            clean_name(&"é".repeat(300)).unwrap().chars().count(),
            MAX_NAME_CHARS
        );
    }
}
