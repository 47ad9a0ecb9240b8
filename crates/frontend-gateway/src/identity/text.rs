//! Names from identity providers, made fit to show. The rules for emails and names typed by
//! people, and what counts as an invisible character, are [`web_common::email`]'s (one
//! definition for both services); this module only adds what the gateway alone needs.

use web_common::email::{MAX_NAME_CHARS, is_invisible};

/// A name from an identity provider, made fit to show: control and invisible format
/// characters ([`is_invisible`]) removed, whitespace runs made one space, trimmed, cut to
/// [`MAX_NAME_CHARS`]. `None` when nothing is left. (A name typed at registration is refused
/// instead: [`web_common::email::name`].)
pub fn clean_name(raw: &str) -> Option<String> {
    let mut out = String::new();
    let mut space = false;
    for c in raw.chars() {
        if c.is_whitespace() {
            space = !out.is_empty();
            continue;
        }
        if is_invisible(c) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
