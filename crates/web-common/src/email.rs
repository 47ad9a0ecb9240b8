//! Emails and names as both services accept them: one definition of an email's shape, of an
//! invisible character, and of the key that says which account an email names.
//!
//! An email is stored as typed (trimmed), and mail goes there; every other use of it (the
//! lookup at sign-in, uniqueness, the sign-in limiter, adding a member) goes through its
//! [`key`]: `users.email_key`, unique. Postgres 15 cannot case-fold, so SQL never computes a
//! key: rows are written with [`Email::key`], and the migration that added the column filled
//! it with [`key`] (see [`crate::db::migrate`]).
//!
//! The key is NFKC case folding: `NFKC(full case fold(NFKC(trimmed)))`, with ICU4X's compiled
//! Unicode data. The inner NFKC folds compatibility characters (fullwidth `ａ`, `＠`, the
//! Kelvin sign) to their plain forms; the full case fold maps case without a locale, including
//! the expansions that lower-casing misses (`ß` and `ẞ` to `ss`, `ﬃ` to `ffi`); the outer NFKC
//! puts what folding produced back into composed form. That is Unicode's compatibility caseless
//! matching (D145) in a stable, composed spelling, and what `NFKC_Casefold` computes except for
//! removing default-ignorable characters, which [`parse`] refuses instead of hiding.
//!
//! The rules, in the order [`parse`] checks them (the first that fails is the [`Refused`]):
//! at most [`MAX_EMAIL_BYTES`] bytes (before anything else, so nothing costly runs on a long
//! input), no control character (NUL included), no invisible format character (bidirectional
//! overrides, zero-width spaces), no whitespace, and then, on the key, a non-empty local part
//! and domain around an `@` (a fullwidth `＠` is one), the key itself no longer than
//! [`MAX_EMAIL_BYTES`].

use std::borrow::Cow;

use icu_casemap::CaseMapper;
use icu_normalizer::ComposingNormalizerBorrowed;

/// The longest email kept, in bytes (UTF-8), typed or as its key.
pub const MAX_EMAIL_BYTES: usize = 254;

/// The longest display name kept, in characters.
pub const MAX_NAME_CHARS: usize = 100;

/// Which rule an email or a name broke. Its `Display` is the reason to give after the field's
/// name (`Problem::invalid_field(field, refused.to_string())`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Longer than [`MAX_EMAIL_BYTES`] (typed, or once normalised).
    #[error("must be at most 254 bytes")]
    TooLong,
    /// A control character (`U+0000`..`U+001F`, `U+007F`..`U+009F`).
    #[error("must not contain control characters")]
    Control,
    /// An invisible format character (see [`is_format`]).
    #[error("must not contain invisible or bidirectional format characters")]
    Format,
    /// Whitespace inside an email.
    #[error("must not contain whitespace")]
    Whitespace,
    /// Not `local@domain`.
    #[error("must be an email address")]
    Shape,
    /// A name that is empty once trimmed, or longer than [`MAX_NAME_CHARS`].
    #[error("must be 1 to 100 characters")]
    NameLength,
}

/// An email that passed [`parse`]: as typed (trimmed) and its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    typed: String,
    key: String,
}

impl Email {
    /// The address as typed, trimmed: what is stored in `users.email` and where mail goes.
    pub fn as_typed(&self) -> &str {
        &self.typed
    }

    /// Its [`key`]: what `users.email_key` holds and what lookups and limits use.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The domain, from the key (so `Example.COM` and `ｅｘａｍｐｌｅ．ｃｏｍ` are `example.com`).
    pub fn domain(&self) -> &str {
        self.key.rsplit_once('@').map_or("", |(_, d)| d)
    }

    /// The address as typed, owned.
    pub fn into_typed(self) -> String {
        self.typed
    }
}

/// Checks `raw` by the rules in the module docs; the email, trimmed, with its key.
pub fn parse(raw: &str) -> Result<Email, Refused> {
    let typed = raw.trim();
    if typed.len() > MAX_EMAIL_BYTES {
        return Err(Refused::TooLong);
    }
    visible(typed)?;
    let key = key(typed);
    if key.chars().any(char::is_whitespace) || typed.chars().any(char::is_whitespace) {
        return Err(Refused::Whitespace);
    }
    // Normalising may bring in what the typed text did not have; the key is held to the rules
    // too.
    visible(&key)?;
    let shaped = key
        .rsplit_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty());
    if !shaped {
        return Err(Refused::Shape);
    }
    if key.len() > MAX_EMAIL_BYTES {
        return Err(Refused::TooLong);
    }
    Ok(Email {
        typed: typed.to_owned(),
        key,
    })
}

/// The key of an email: NFKC case folding of it, trimmed (see the module docs). It checks
/// nothing: [`parse`] is for input; this alone is for emails already stored.
pub fn key(email: &str) -> String {
    const NFKC: ComposingNormalizerBorrowed<'static> = ComposingNormalizerBorrowed::new_nfkc();
    let compatible = NFKC.normalize(email.trim());
    let folded = CaseMapper::new().fold_string(&compatible);
    match NFKC.normalize(&folded) {
        Cow::Borrowed(same) => same.to_owned(),
        Cow::Owned(changed) => changed,
    }
}

/// A display name typed by a person (registration): trimmed, 1 to [`MAX_NAME_CHARS`]
/// characters, without control or invisible format characters.
pub fn name(raw: &str) -> Result<String, Refused> {
    let name = raw.trim();
    visible(name)?;
    if !(1..=MAX_NAME_CHARS).contains(&name.chars().count()) {
        return Err(Refused::NameLength);
    }
    Ok(name.to_owned())
}

/// `Ok` when `text` has no control character and no invisible format character.
pub fn visible(text: &str) -> Result<(), Refused> {
    for c in text.chars() {
        if c.is_control() {
            return Err(Refused::Control);
        }
        if is_format(c) {
            return Err(Refused::Format);
        }
    }
    Ok(())
}

/// `true` for a character never kept in an email or a name: a control or a format character.
pub fn is_invisible(c: char) -> bool {
    c.is_control() || is_format(c)
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
    fn spellings_of_one_address_share_a_key() {
        for spelling in [
            "ada@example.com",
            "Ada@Example.com",
            "  ADA@EXAMPLE.COM ",
            "ａｄａ＠ｅｘａｍｐｌｅ．ｃｏｍ",
            "ＡＤＡ@example.com",
        ] {
            assert_eq!(
                parse(spelling).unwrap().key(),
                "ada@example.com",
                "{spelling:?}"
            );
        }
        // Full case folding, which lower-casing misses.
        assert_eq!(key("Straße@x.io"), key("STRASSE@x.io"));
        assert_eq!(key("strasse@x.io"), "strasse@x.io");
        assert_eq!(key("ẞ@x.io"), "ss@x.io");
        // The Kelvin sign is a K; lower-casing and Postgres' lower() already agree on it, but
        // the fullwidth K only folds through NFKC.
        assert_eq!(key("\u{212A}elvin@x.io"), "kelvin@x.io");
        assert_eq!(key("\u{FF2B}elvin@x.io"), "kelvin@x.io");
        // Composed and decomposed accents are one spelling.
        assert_eq!(key("Ame\u{301}lie@x.io"), key("Amélie@x.io"));
        // The ligature ﬁ.
        assert_eq!(key("\u{FB01}nn@x.io"), "finn@x.io");
    }

    #[test]
    fn a_key_is_its_own_key() {
        for spelling in [
            "Straße@x.io",
            "ａｄａ＠ｅｘａｍｐｌｅ．ｃｏｍ",
            "\u{212A}@x.io",
            "ΣΊΣΥΦΟΣ@x.gr",
            "\u{0345}\u{0399}@x.io",
            "Ǆ@x.io",
        ] {
            let once = key(spelling);
            assert_eq!(key(&once), once, "{spelling:?}");
        }
    }

    #[test]
    fn the_typed_address_is_kept_trimmed() {
        let email = parse("  Ada@Example.com ").unwrap();
        assert_eq!(email.as_typed(), "Ada@Example.com");
        assert_eq!(email.domain(), "example.com");
        assert_eq!(
            parse("ａｄａ＠ｅｘａｍｐｌｅ．ｃｏｍ").unwrap().domain(),
            "example.com"
        );
    }

    #[test]
    fn each_rule_is_named() {
        for (bad, refused) in [
            ("", Refused::Shape),
            ("ada", Refused::Shape),
            ("@example.com", Refused::Shape),
            ("ada@", Refused::Shape),
            ("a da@example.com", Refused::Whitespace),
            ("a\u{3000}da@example.com", Refused::Whitespace),
            ("ada\u{0}@x.io", Refused::Control),
            ("ada\u{1b}@x.io", Refused::Control),
            ("ada\u{85}@x.io", Refused::Control),
            ("ada\u{202e}@x.io", Refused::Format),
            ("ada\u{200b}@x.io", Refused::Format),
            ("ada\u{feff}@x.io", Refused::Format),
            ("\u{FDFA}@x.io", Refused::Whitespace),
        ] {
            assert_eq!(parse(bad), Err(refused), "{bad:?}");
        }
    }

    #[test]
    fn length_is_counted_in_bytes_and_checked_first() {
        let at_limit = format!("{}@x.io", "a".repeat(MAX_EMAIL_BYTES - 5));
        assert_eq!(at_limit.len(), MAX_EMAIL_BYTES);
        assert!(parse(&at_limit).is_ok());
        let over = format!("{}@x.io", "a".repeat(MAX_EMAIL_BYTES - 4));
        assert_eq!(parse(&over), Err(Refused::TooLong));
        // 100 characters but 300 bytes.
        assert_eq!(
            parse(&format!("{}@x.io", "é".repeat(150))),
            Err(Refused::TooLong)
        );
        // Before any other rule.
        assert_eq!(
            parse(&format!("\u{0}{}", "a".repeat(300))),
            Err(Refused::TooLong)
        );
        // A key that grows past the limit (U+FDFB expands to 8 characters) is refused too.
        let grows = format!("{}@x.io", "\u{FDFB}".repeat(20));
        assert!(grows.len() <= MAX_EMAIL_BYTES);
        assert!(parse(&grows).is_err());
    }

    #[test]
    fn names_are_trimmed_and_refuse_invisible_characters() {
        assert_eq!(name("  Ada Lovelace ").as_deref(), Ok("Ada Lovelace"));
        assert_eq!(name("Ada\u{0}"), Err(Refused::Control));
        assert_eq!(name("Ada\u{202e}"), Err(Refused::Format));
        assert_eq!(name("\u{200b}"), Err(Refused::Format));
        assert_eq!(name("   "), Err(Refused::NameLength));
        assert_eq!(name(&"é".repeat(101)), Err(Refused::NameLength));
        assert!(name(&"é".repeat(100)).is_ok());
    }
}
