//! Reading typed settings from the environment, with errors that say what to do.
//!
//! Each service has one `Settings` type that reads every variable it knows through a
//! [`Source`] (the process environment, or a fixed list in tests), and nothing else in the
//! workspace reads the environment. [`load`] is how both services start: `.env` first (in
//! development), then the settings, and on any bad value a message naming the variable and the
//! exit status [`EX_CONFIG`]. [`Recorder`] lists the variables a `Settings` type asks for, so a
//! test can hold the documentation to the code.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::fmt;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

/// Where the service runs: it decides cookie flags, secret checks and the log format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AppEnv {
    /// Friendly defaults, human-readable logs.
    #[default]
    Development,
    /// Strict: secrets required, `Secure` cookies, JSON logs.
    Production,
}

impl AppEnv {
    /// `true` in production.
    pub fn is_production(self) -> bool {
        self == Self::Production
    }
}

impl FromStr for AppEnv {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "dev" | "development" | "local" | "test" => Ok(Self::Development),
            "prod" | "production" => Ok(Self::Production),
            _ => Err(ConfigError::invalid(
                "APP_ENV",
                "expected `development` or `production`",
            )),
        }
    }
}

impl fmt::Display for AppEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Development => "development",
            Self::Production => "production",
        })
    }
}

/// A setting that is missing or wrong. The message names the variable and what to do; it never
/// contains the value (which may be a secret).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is unset or empty.
    #[error("{name} is not set: {hint}")]
    Missing {
        /// The variable.
        name: &'static str,
        /// What to set it to.
        hint: &'static str,
    },
    /// A variable is set to something unusable.
    #[error("{name} is invalid: {reason}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// Why, without the value.
        reason: String,
    },
}

impl ConfigError {
    /// An invalid-value error for `name`.
    pub fn invalid(name: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            name,
            reason: reason.into(),
        }
    }
}

/// Where settings come from: the process environment, or a fixed list in tests.
pub trait Source {
    /// The value of `name`, if set and not blank.
    fn get(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Source for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.trim().is_empty())
    }
}

impl<const N: usize> Source for [(&str, &str); N] {
    fn get(&self, name: &str) -> Option<String> {
        self.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
            .filter(|v| !v.trim().is_empty())
    }
}

impl Source for Vec<(String, String)> {
    fn get(&self, name: &str) -> Option<String> {
        self.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.trim().is_empty())
    }
}

/// A required variable.
pub fn required(
    src: &impl Source,
    name: &'static str,
    hint: &'static str,
) -> Result<String, ConfigError> {
    src.get(name).ok_or(ConfigError::Missing { name, hint })
}

/// An optional variable parsed with `FromStr`, or `default`.
pub fn parsed_or<T: FromStr>(
    src: &impl Source,
    name: &'static str,
    default: T,
) -> Result<T, ConfigError>
where
    T::Err: fmt::Display,
{
    match src.get(name) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|e: T::Err| ConfigError::invalid(name, e.to_string())),
    }
}

/// An optional number of seconds, at least 1, or `default`.
pub fn secs(src: &impl Source, name: &'static str, default: u64) -> Result<Duration, ConfigError> {
    let secs: u64 = parsed_or(src, name, default)?;
    if secs == 0 {
        return Err(ConfigError::invalid(name, "must be at least 1 second"));
    }
    Ok(Duration::from_secs(secs))
}

/// The exit status of a service whose configuration is wrong (`EX_CONFIG` of `sysexits.h`).
pub const EX_CONFIG: u8 = 78;

/// Reads a service's settings the way every service starts: `.env` from the working directory
/// when there is one (its variables never override the real environment), then `read` on the
/// process environment. On a bad `.env` line or a bad setting it prints
/// `<service>: configuration error: <what, naming the variable>` and answers the exit status
/// [`EX_CONFIG`] to return from `main`.
pub fn load<T>(
    service: &str,
    read: impl FnOnce(&ProcessEnv) -> Result<T, ConfigError>,
) -> Result<T, ExitCode> {
    let fail = |what: &dyn fmt::Display| {
        eprintln!("{service}: configuration error: {what}");
        ExitCode::from(EX_CONFIG)
    };
    match dotenvy::dotenv() {
        Ok(_) => {}
        Err(dotenvy::Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
        // The parse error quotes the line, which may hold a secret: say what is wrong, not it.
        Err(dotenvy::Error::LineParse(..)) => {
            return Err(fail(
                &".env could not be read: a line is not `NAME=value` (quote a value with spaces)",
            ));
        }
        Err(e) => return Err(fail(&format_args!(".env could not be read ({e})"))),
    }
    read(&ProcessEnv).map_err(|e| fail(&e))
}

/// A [`Source`] that remembers every name asked for: which variables a settings type reads.
#[derive(Debug)]
pub struct Recorder<S> {
    inner: S,
    asked: RefCell<BTreeSet<String>>,
}

impl<S: Source> Recorder<S> {
    /// Records the names asked of `inner` (whose values are answered as they are).
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            asked: RefCell::new(BTreeSet::new()),
        }
    }

    /// Every name asked for so far, sorted.
    pub fn names(&self) -> BTreeSet<String> {
        self.asked.borrow().clone()
    }
}

impl<S: Source> Source for Recorder<S> {
    fn get(&self, name: &str) -> Option<String> {
        self.asked.borrow_mut().insert(name.to_owned());
        self.inner.get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_values_count_as_unset_and_bad_ones_name_the_variable() {
        let src = [("A", "  "), ("N", "12"), ("BAD", "x"), ("ZERO", "0")];
        assert_eq!(src.get("A"), None);
        assert_eq!(parsed_or(&src, "N", 1u32).unwrap(), 12);
        assert_eq!(parsed_or(&src, "MISSING", 7u32).unwrap(), 7);
        let err = parsed_or::<u32>(&src, "BAD", 1).unwrap_err();
        assert!(err.to_string().starts_with("BAD is invalid"), "{err}");
        assert_eq!(secs(&src, "N", 1).unwrap(), Duration::from_secs(12));
        assert!(
            secs(&src, "ZERO", 1)
                .unwrap_err()
                .to_string()
                .contains("ZERO")
        );
    }

    #[test]
    fn a_recorder_lists_every_name_asked_for() {
        let rec = Recorder::new([("A", "1")]);
        assert_eq!(rec.get("A").as_deref(), Some("1"));
        assert_eq!(rec.get("B"), None);
        let names: Vec<_> = rec.names().into_iter().collect();
        assert_eq!(names, ["A", "B"]);
    }
}
