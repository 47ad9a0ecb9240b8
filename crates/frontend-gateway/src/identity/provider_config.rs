//! Reading the identity providers from settings: one OpenID Connect provider (`OIDC_*`) and
//! one GitHub (`GITHUB_*`) from plain variables, any number more from `AUTH_PROVIDERS` (a JSON
//! list). Called by the gateway's `Settings`; every problem names the variable.

use std::collections::BTreeSet;
use std::net::IpAddr;

use serde::Deserialize;
use web_common::env::{AppEnv, ConfigError, Source, parsed_or, secs};

use super::settings::{AuthSettings, ClientSecret, ClientSettings, ProviderKind, ProviderSettings};

/// The name on the button of the `oidc` provider when `OIDC_NAME` is not set.
pub const DEFAULT_OIDC_NAME: &str = "OpenID Connect";
/// The scopes of an OpenID Connect provider when none are set.
pub const DEFAULT_OIDC_SCOPES: &str = "openid email profile";
/// The scopes GitHub is asked for: the profile and the email addresses.
pub const GITHUB_SCOPES: &str = "read:user user:email";

/// One entry of `AUTH_PROVIDERS`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Entry {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    name: Option<String>,
    issuer: Option<String>,
    client_id: String,
    client_secret: String,
    scopes: Option<String>,
    #[serde(default)]
    trust_email: bool,
    #[serde(default)]
    allowed_domains: Vec<String>,
    #[serde(default = "yes")]
    allow_sign_up: bool,
    #[serde(default)]
    end_session: bool,
    url: Option<String>,
    api_url: Option<String>,
}

fn yes() -> bool {
    true
}

/// Reads the `AUTH_*`, `OIDC_*` and `GITHUB_*` variables.
pub fn auth(src: &impl Source, app_env: AppEnv) -> Result<AuthSettings, ConfigError> {
    let credentials = parsed_or(src, "AUTH_CREDENTIALS", true)?;
    let email_links = parsed_or(src, "AUTH_EMAIL_LINKS", false)?;
    let allowed_email_domains = domains(src.get("AUTH_ALLOWED_EMAIL_DOMAINS").as_deref());
    let provider_timeout = secs(src, "AUTH_PROVIDER_TIMEOUT_SECS", 5)?;
    if provider_timeout.is_zero() {
        return Err(ConfigError::invalid(
            "AUTH_PROVIDER_TIMEOUT_SECS",
            "must be at least 1 (a provider that hangs must not hang a sign-in)",
        ));
    }
    let mut providers = Vec::new();
    // Every variable is read, set or not, so the documentation check sees them all.
    let oidc = [
        "OIDC_ISSUER",
        "OIDC_CLIENT_ID",
        "OIDC_CLIENT_SECRET",
        "OIDC_NAME",
        "OIDC_SCOPES",
    ]
    .map(|name| src.get(name));
    let oidc_trust: bool = parsed_or(src, "OIDC_TRUST_EMAIL", false)?;
    let oidc_end_session: bool = parsed_or(src, "OIDC_END_SESSION", false)?;
    let [issuer, client_id, client_secret, name, scopes] = oidc;
    {
        match (issuer, client_id, client_secret) {
            (None, None, None) => {}
            (Some(issuer), Some(client_id), Some(client_secret)) => {
                let client = ClientSettings {
                    id: "oidc".to_owned(),
                    name: name.unwrap_or_else(|| DEFAULT_OIDC_NAME.to_owned()),
                    client_id,
                    client_secret: ClientSecret::new(client_secret),
                    scopes: oidc_scopes("OIDC_SCOPES", scopes.as_deref())?,
                    trust_email: oidc_trust,
                    allowed_domains: Vec::new(),
                    allow_sign_up: true,
                };
                let issuer = checked_issuer("OIDC_ISSUER", &issuer, app_env)?;
                providers.push(ProviderSettings {
                    client,
                    kind: ProviderKind::Oidc {
                        issuer,
                        end_session: oidc_end_session,
                    },
                });
            }
            (issuer, client_id, _) => {
                let missing = if issuer.is_none() {
                    "OIDC_ISSUER"
                } else if client_id.is_none() {
                    "OIDC_CLIENT_ID"
                } else {
                    "OIDC_CLIENT_SECRET"
                };
                return Err(ConfigError::Missing {
                    name: missing,
                    hint: "an OpenID Connect provider needs OIDC_ISSUER, OIDC_CLIENT_ID and OIDC_CLIENT_SECRET",
                });
            }
        }
    }
    let github = [
        "GITHUB_CLIENT_ID",
        "GITHUB_CLIENT_SECRET",
        "GITHUB_URL",
        "GITHUB_API_URL",
    ]
    .map(|name| src.get(name));
    let [client_id, client_secret, url, api_url] = github;
    {
        match (client_id, client_secret) {
            (None, None) => {}
            (Some(client_id), Some(client_secret)) => providers.push(ProviderSettings {
                client: ClientSettings {
                    id: "github".to_owned(),
                    name: "GitHub".to_owned(),
                    client_id,
                    client_secret: ClientSecret::new(client_secret),
                    scopes: GITHUB_SCOPES.split(' ').map(str::to_owned).collect(),
                    trust_email: false,
                    allowed_domains: Vec::new(),
                    allow_sign_up: true,
                },
                kind: ProviderKind::GitHub {
                    url: checked_url(
                        "GITHUB_URL",
                        url.as_deref().unwrap_or("https://github.com"),
                        app_env,
                    )?,
                    api_url: checked_url(
                        "GITHUB_API_URL",
                        api_url.as_deref().unwrap_or("https://api.github.com"),
                        app_env,
                    )?,
                },
            }),
            (client_id, _) => {
                return Err(ConfigError::Missing {
                    name: if client_id.is_none() {
                        "GITHUB_CLIENT_ID"
                    } else {
                        "GITHUB_CLIENT_SECRET"
                    },
                    hint: "GitHub sign-in needs GITHUB_CLIENT_ID and GITHUB_CLIENT_SECRET",
                });
            }
        }
    }
    if let Some(json) = src.get("AUTH_PROVIDERS") {
        let entries: Vec<Entry> = serde_json::from_str(&json).map_err(|e| {
            ConfigError::invalid(
                "AUTH_PROVIDERS",
                format!("not a JSON list of providers ({e})"),
            )
        })?;
        for entry in entries {
            providers.push(from_entry(entry, app_env)?);
        }
    }
    let mut ids = BTreeSet::new();
    for provider in &providers {
        let id = provider.client.id.as_str();
        let well_formed = (1..=64).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !well_formed || matches!(id, "credentials" | "email") {
            return Err(ConfigError::invalid(
                "AUTH_PROVIDERS",
                format!(
                    "provider id {id:?}: ids are 1 to 64 of [a-z0-9-], never `credentials` or `email`"
                ),
            ));
        }
        if !ids.insert(id) {
            return Err(ConfigError::invalid(
                "AUTH_PROVIDERS",
                format!(
                    "provider id {id:?} is used twice (`oidc` and `github` are taken by OIDC_* and GITHUB_*)"
                ),
            ));
        }
    }
    if !credentials && !email_links && providers.is_empty() {
        return Err(ConfigError::invalid(
            "AUTH_CREDENTIALS",
            "is false and neither sign-in links (AUTH_EMAIL_LINKS) nor an identity provider is configured: nobody could sign in",
        ));
    }
    Ok(AuthSettings {
        credentials,
        email_links,
        allowed_email_domains,
        providers,
        provider_timeout,
    })
}

fn from_entry(entry: Entry, app_env: AppEnv) -> Result<ProviderSettings, ConfigError> {
    let invalid = |reason: String| ConfigError::invalid("AUTH_PROVIDERS", reason);
    let id = entry.id;
    let empty = |field: &str, value: &str| {
        value
            .trim()
            .is_empty()
            .then(|| invalid(format!("provider {id:?}: {field} is empty")))
    };
    if let Some(e) =
        empty("clientId", &entry.client_id).or(empty("clientSecret", &entry.client_secret))
    {
        return Err(e);
    }
    let in_entry = |field: &str, url: &str| {
        checked_url("AUTH_PROVIDERS", url, app_env)
            .map_err(|e| invalid(format!("provider {id:?}: {field}: {e}")))
    };
    let issuer_in_entry = |url: &str| {
        checked_issuer("AUTH_PROVIDERS", url, app_env)
            .map_err(|e| invalid(format!("provider {id:?}: issuer: {e}")))
    };
    let (kind, name, scopes) = match entry.kind.as_str() {
        "oidc" => {
            let issuer = entry.issuer.as_deref().ok_or_else(|| {
                invalid(format!("provider {id:?}: an oidc provider needs an issuer"))
            })?;
            (
                ProviderKind::Oidc {
                    issuer: issuer_in_entry(issuer)?,
                    end_session: entry.end_session,
                },
                entry.name.unwrap_or_else(|| DEFAULT_OIDC_NAME.to_owned()),
                oidc_scopes("AUTH_PROVIDERS", entry.scopes.as_deref())?,
            )
        }
        "github" => (
            ProviderKind::GitHub {
                url: in_entry("url", entry.url.as_deref().unwrap_or("https://github.com"))?,
                api_url: in_entry(
                    "apiUrl",
                    entry.api_url.as_deref().unwrap_or("https://api.github.com"),
                )?,
            },
            entry.name.unwrap_or_else(|| "GitHub".to_owned()),
            entry
                .scopes
                .as_deref()
                .unwrap_or(GITHUB_SCOPES)
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
        ),
        other => {
            return Err(invalid(format!(
                "provider {id:?}: type {other:?} is not `oidc` or `github`"
            )));
        }
    };
    Ok(ProviderSettings {
        client: ClientSettings {
            id,
            name,
            client_id: entry.client_id,
            client_secret: ClientSecret::new(entry.client_secret),
            scopes,
            trust_email: entry.trust_email,
            allowed_domains: domains(Some(&entry.allowed_domains.join(","))),
            allow_sign_up: entry.allow_sign_up,
        },
        kind,
    })
}

/// A comma-separated list of domains, trimmed and lower-cased (a leading `@` dropped).
fn domains(list: Option<&str>) -> Vec<String> {
    list.unwrap_or_default()
        .split(',')
        .map(|d| d.trim().trim_start_matches('@').to_ascii_lowercase())
        .filter(|d| !d.is_empty())
        .collect()
}

fn oidc_scopes(name: &'static str, scopes: Option<&str>) -> Result<Vec<String>, ConfigError> {
    let scopes: Vec<String> = scopes
        .unwrap_or(DEFAULT_OIDC_SCOPES)
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    if !scopes.iter().any(|s| s == "openid") {
        return Err(ConfigError::invalid(
            name,
            "the scopes of an OpenID Connect provider must include `openid`",
        ));
    }
    Ok(scopes)
}

/// An issuer: a provider URL ([`checked_url`]) kept exactly as given (trailing slash
/// included), since discovery must return this very string as its `issuer`.
fn checked_issuer(name: &'static str, raw: &str, app_env: AppEnv) -> Result<String, ConfigError> {
    checked_url(name, raw, app_env)?;
    Ok(raw.trim().to_owned())
}

/// A provider URL: `http(s)://host[:port][/path]`, no query, fragment or user info, no
/// trailing slash. Production requires https, except on loopback (a provider on the same
/// host).
fn checked_url(name: &'static str, raw: &str, app_env: AppEnv) -> Result<String, ConfigError> {
    let invalid = |reason: &str| ConfigError::invalid(name, format!("{raw:?}: {reason}"));
    let url = url::Url::parse(raw.trim()).map_err(|_| invalid("not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("must be http(s)"));
    }
    let Some(host) = url.host_str() else {
        return Err(invalid("has no host"));
    };
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(invalid("must not have a query, a fragment or user info"));
    }
    let loopback = host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if app_env.is_production() && url.scheme() != "https" && !loopback {
        return Err(invalid("must be https in production"));
    }
    Ok(raw.trim().trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn nothing_configured_is_credentials_only() {
        let auth = auth(&vars(&[]), AppEnv::Development).unwrap();
        assert!(auth.credentials);
        assert!(auth.providers.is_empty());
    }

    #[test]
    fn plain_variables_make_the_oidc_and_github_providers() {
        let auth = auth(
            &vars(&[
                ("OIDC_ISSUER", "https://idp.example/realms/a/"),
                ("OIDC_CLIENT_ID", "gw"),
                ("OIDC_CLIENT_SECRET", "s"),
                ("OIDC_TRUST_EMAIL", "true"),
                ("GITHUB_CLIENT_ID", "gh"),
                ("GITHUB_CLIENT_SECRET", "t"),
                ("AUTH_ALLOWED_EMAIL_DOMAINS", " Example.com, @corp.example "),
            ]),
            AppEnv::Production,
        )
        .unwrap();
        assert_eq!(auth.allowed_email_domains, ["example.com", "corp.example"]);
        let [oidc, github] = &auth.providers[..] else {
            panic!("{:?}", auth.providers)
        };
        assert_eq!(oidc.client.id, "oidc");
        assert_eq!(oidc.client.name, DEFAULT_OIDC_NAME);
        assert_eq!(oidc.client.scopes, ["openid", "email", "profile"]);
        assert!(oidc.client.trust_email);
        assert_eq!(
            oidc.kind,
            ProviderKind::Oidc {
                issuer: "https://idp.example/realms/a/".into(),
                end_session: false
            }
        );
        assert_eq!(github.client.scopes, ["read:user", "user:email"]);
        assert!(!github.client.trust_email);
        assert!(format!("{:?}", github.client).contains("ClientSecret(..)"));
    }

    #[test]
    fn a_list_adds_providers_and_bad_entries_name_the_variable() {
        let list = r#"[{"id":"corp","type":"oidc","name":"Corp","issuer":"http://127.0.0.1:9/","clientId":"a","clientSecret":"b","allowedDomains":["Corp.example"],"allowSignUp":false},
                       {"id":"ghe","type":"github","clientId":"c","clientSecret":"d","url":"https://ghe.example","apiUrl":"https://ghe.example/api/v3"}]"#;
        let listed = auth(&vars(&[("AUTH_PROVIDERS", list)]), AppEnv::Production).unwrap();
        assert_eq!(listed.providers.len(), 2);
        assert_eq!(listed.providers[0].client.allowed_domains, ["corp.example"]);
        assert!(!listed.providers[0].client.allow_sign_up);
        for bad in [
            r#"[{"id":"credentials","type":"oidc","issuer":"https://a.example","clientId":"a","clientSecret":"b"}]"#,
            r#"[{"id":"Bad_Id","type":"oidc","issuer":"https://a.example","clientId":"a","clientSecret":"b"}]"#,
            r#"[{"id":"a","type":"saml","clientId":"a","clientSecret":"b"}]"#,
            r#"[{"id":"a","type":"oidc","clientId":"a","clientSecret":"b"}]"#,
            r#"[{"id":"a","type":"oidc","issuer":"http://idp.example","clientId":"a","clientSecret":"b"}]"#,
            r#"[{"id":"a","type":"oidc","issuer":"https://a.example","clientId":"a","clientSecret":"b","scopes":"email"}]"#,
            r#"[{"id":"a","type":"oidc","issuer":"https://a.example","clientId":"a","clientSecret":"b","typo":1}]"#,
            r#"[{"id":"a","type":"github","clientId":"a","clientSecret":"b"},{"id":"a","type":"github","clientId":"a","clientSecret":"b"}]"#,
            "not json",
        ] {
            let err = auth(&vars(&[("AUTH_PROVIDERS", bad)]), AppEnv::Production).unwrap_err();
            assert!(err.to_string().contains("AUTH_PROVIDERS"), "{bad}: {err}");
        }
    }

    #[test]
    fn half_a_provider_or_no_way_to_sign_in_is_refused() {
        let err = auth(
            &vars(&[("OIDC_ISSUER", "https://a.example")]),
            AppEnv::Development,
        )
        .unwrap_err();
        assert!(err.to_string().contains("OIDC_CLIENT_ID"), "{err}");
        let err = auth(&vars(&[("GITHUB_CLIENT_ID", "a")]), AppEnv::Development).unwrap_err();
        assert!(err.to_string().contains("GITHUB_CLIENT_SECRET"), "{err}");
        let err = auth(&vars(&[("AUTH_CREDENTIALS", "false")]), AppEnv::Development).unwrap_err();
        assert!(err.to_string().contains("AUTH_CREDENTIALS"), "{err}");
        let err = auth(
            &vars(&[("AUTH_PROVIDER_TIMEOUT_SECS", "0")]),
            AppEnv::Development,
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("AUTH_PROVIDER_TIMEOUT_SECS"),
            "{err}"
        );
    }
}
