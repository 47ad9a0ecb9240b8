//! Reading typed settings from the environment, with errors that say what to do.

use std::fmt;
use std::str::FromStr;

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

/// `HTTP_WORKERS`: how many actix worker threads (each a single-threaded runtime) serve
/// requests. Default: the number of CPUs this process may run on.
pub fn http_workers(src: &impl Source) -> Result<std::num::NonZeroUsize, ConfigError> {
    let cpus = std::thread::available_parallelism().unwrap_or(std::num::NonZeroUsize::MIN);
    parsed_or(src, "HTTP_WORKERS", cpus)
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
