//! The pages a mailed link opens (verification, password reset, sign-in link).
//!
//! Opening a link changes nothing: its page shows a form whose POST (to the same path, with
//! the token and the page's `csrfToken` as hidden fields) is what uses the token. A mail
//! scanner that fetches links burns none, and a link an attacker mails to a victim cannot sign
//! the victim into the attacker's account without the victim reading the page and choosing to.
//! A used, expired or tampered link gets a readable page that says so.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse};

use super::state::Identity;
use crate::pages::{self, escape_html as escape};

/// A page with a form that uses a link.
#[derive(Debug)]
pub struct Confirm<'a> {
    /// The heading (and title).
    pub title: &'a str,
    /// What using the link does (plain text).
    pub message: &'a str,
    /// Where the form posts (the link's own path).
    pub action: &'a str,
    /// Hidden fields (the token; the email of a sign-in link).
    pub hidden: &'a [(&'a str, &'a str)],
    /// Whether the form asks for a new password (a reset).
    pub new_password: bool,
    /// The button's label.
    pub button: &'a str,
}

/// The page of a link that works: `confirm`'s form, with the `csrfToken` of the client's CSRF
/// cookie (set here when it has none).
pub fn confirm(req: &HttpRequest, identity: &Identity, confirm: &Confirm<'_>) -> HttpResponse {
    let existing = req.cookie(identity.csrf.cookie_name());
    let (csrf_token, cookie) = identity.csrf.issue(existing.as_ref().map(|c| c.value()));
    let mut hidden = String::new();
    for (name, value) in confirm
        .hidden
        .iter()
        .chain([&("csrfToken", csrf_token.as_str())])
    {
        hidden.push_str(&format!(
            r#"<input type="hidden" name="{}" value="{}">"#,
            escape(name),
            escape(value)
        ));
    }
    let password = if confirm.new_password {
        r#"<div class="field"><label for="link-password">New password</label>
        <input id="link-password" name="newPassword" type="password" required minlength="8" maxlength="128"
               autocomplete="new-password" data-testid="link-password">
        <p class="muted">8 to 128 characters.</p></div>"#
    } else {
        ""
    };
    let body = format!(
        r#"<p data-testid="link-message">{message}</p>
      <form id="link-form" class="stack" method="post" action="{action}" data-testid="link-form">{hidden}{password}
        <button id="link-submit" class="primary" type="submit" data-testid="link-submit">{button}</button>
      </form>"#,
        message = escape(confirm.message),
        action = escape(confirm.action),
        button = escape(confirm.button),
    );
    let mut res = pages::rendered(StatusCode::OK, document(confirm.title, &body));
    // The app's pages send no referrer at all, and browsers then send `Origin: null` with a
    // form's POST, which the cross-site check refuses. Here the origin alone (never the path,
    // whose query holds the token) goes with the page's requests.
    res.headers_mut().insert(
        header::REFERRER_POLICY,
        header::HeaderValue::from_static("strict-origin"),
    );
    if let Some(cookie) = cookie {
        let _ = res.add_cookie(&cookie);
    }
    res
}

/// A page that tells how it went, with a link onwards (`status` 400 for a link that does not
/// work).
pub fn outcome(
    status: StatusCode,
    title: &str,
    message: &str,
    (link_text, link_href): (&str, &str),
) -> HttpResponse {
    let body = format!(
        r#"<p data-testid="link-message">{}</p>
      <p><a href="{}" data-testid="link-onwards">{}</a></p>"#,
        escape(message),
        escape(link_href),
        escape(link_text),
    );
    let mut res = pages::rendered(status, document(title, &body));
    // A page, not an API error: the problem middleware leaves it as it is.
    res.extensions_mut().insert(web_common::problem::Untouched);
    res
}

/// The page of a link that is used, expired, unknown or tampered with (all look the same).
pub fn dead_link(what: &str, again: (&str, &str)) -> HttpResponse {
    outcome(
        StatusCode::BAD_REQUEST,
        "This link does not work",
        &format!(
            "This {what} link was already used, has expired, or is not a link we sent. Nobody was signed in and nothing was changed."
        ),
        again,
    )
}

fn document(title: &str, body: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{title} · Workspaces</title>
  <link rel="icon" href="data:,">
  <link rel="stylesheet" href="/assets/app.css">
</head>
<body data-page="link">
  <header class="app-header"><a class="brand" href="/workspaces">Workspaces</a></header>
  <main id="main" class="narrow">
    <section class="card">
      <h1 data-testid="link-title">{title}</h1>
      {body}
    </section>
  </main>
</body>
</html>
"#,
        title = escape(title),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_carry_no_script() {
        let html = document("T", "<p>x</p>");
        assert!(!html.contains("<script"));
        assert!(!html.contains(" style="));
    }
}
