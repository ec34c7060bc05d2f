//! The app's HTML: the home page (Connect buttons, connected accounts) and
//! the message page. Every interpolated value is HTML-escaped; no page ever
//! shows a token, a code or a state. Each page's footer names the instance
//! that served it (useful behind a load balancer).

use std::fmt::Write as _;
use std::time::SystemTime;

use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};
use oauth2_adapters::DisplayTime;

use super::accounts::Account;
use super::providers::display_name;

/// A Connect button: the provider's slug and name.
pub(crate) struct Button<'a> {
    pub(crate) slug: &'a str,
    pub(crate) name: &'a str,
}

/// The home page. `notice` is a fixed message chosen by the app.
pub(crate) fn home(
    app_name: &str,
    buttons: &[Button<'_>],
    accounts: &[Account],
    notice: Option<&str>,
    now: SystemTime,
    served_by: &str,
) -> String {
    let mut body = format!("<h1>{}</h1>\n", text(app_name));
    if let Some(notice) = notice {
        let _ = writeln!(
            body,
            "<p id=\"notice\" class=\"notice\" role=\"status\">{}</p>",
            text(notice)
        );
    }
    body.push_str("<h2>Connect an account</h2>\n<div class=\"buttons\">\n");
    for button in buttons {
        let _ = writeln!(
            body,
            "  <form method=\"post\" action=\"/connect/{slug_attr}\">\
             <button id=\"connect-{slug_attr}\" type=\"submit\">Connect {name}</button></form>",
            slug_attr = attr(button.slug),
            name = text(button.name),
        );
    }
    body.push_str("</div>\n<h2>Connected accounts</h2>\n");
    body.push_str(
        "<table id=\"accounts\">\n<thead><tr><th>Provider</th><th>Account</th>\
         <th>Scopes</th><th>Access token expires</th></tr></thead>\n<tbody>\n",
    );
    if accounts.is_empty() {
        body.push_str(
            "<tr id=\"no-accounts\"><td colspan=\"4\">No account connected yet.</td></tr>\n",
        );
    }
    for account in accounts {
        let subject = match &account.subject {
            Some(subject) => format!("<span class=\"subject\">{}</span>", text(subject)),
            None => format!(
                "<span class=\"subject\">{}</span> <small>(the provider does not name \
                 accounts; id made up by this app)</small>",
                text(&account.account)
            ),
        };
        let _ = writeln!(
            body,
            "<tr data-provider=\"{provider_attr}\"><td>{provider}</td><td>{subject}</td>\
             <td class=\"scopes\">{scopes}</td><td class=\"expires\">{expires}</td></tr>",
            provider_attr = attr(&account.provider),
            provider = text(display_name(&account.provider)),
            scopes = text(&account.scopes.join(" ")),
            expires = expiry(account.expires_at, now),
        );
    }
    body.push_str("</tbody>\n</table>\n");
    layout(app_name, &body, served_by)
}

/// The message page for a sign-in that did not complete.
pub(crate) fn problem(app_name: &str, title: &str, message: &str, served_by: &str) -> String {
    let body = format!(
        "<div id=\"error\" class=\"error\" role=\"alert\">\n<h1>{}</h1>\n<p>{}</p>\n</div>\n\
         <p><a id=\"home\" href=\"/\">Back to {}</a></p>\n",
        text(title),
        text(message),
        text(app_name),
    );
    layout(title, &body, served_by)
}

fn expiry(expires_at: Option<SystemTime>, now: SystemTime) -> String {
    match expires_at {
        None => "unknown".to_owned(),
        Some(at) if at <= now => format!("{} (expired)", DisplayTime(at)),
        Some(at) => DisplayTime(at).to_string(),
    }
}

fn layout(title: &str, body: &str, served_by: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n{body}\
         <footer>Served by <span id=\"served-by\">{}</span></footer>\n</main>\n\
         </body>\n</html>\n",
        text(title),
        text(served_by)
    )
}

const STYLE: &str =
    "body{font-family:system-ui,sans-serif;background:#f9fafb;margin:0;color:#111827}\
main{max-width:46rem;margin:2.5rem auto;padding:0 1rem}\
h1{font-size:1.6rem}h2{font-size:1.1rem;margin-top:2rem}\
.buttons{display:flex;gap:.75rem}\
button{font-size:1rem;padding:.55rem 1.2rem;border-radius:8px;border:1px solid #2563eb;\
background:#2563eb;color:#fff;cursor:pointer}\
table{border-collapse:collapse;width:100%;background:#fff}\
th,td{text-align:left;padding:.5rem .6rem;border-bottom:1px solid #e5e7eb;font-size:.92rem}\
small{color:#6b7280}.expires{white-space:nowrap}\
.notice{background:#ecfdf5;border:1px solid #10b981;padding:.6rem .8rem;border-radius:8px}\
.error{background:#fef2f2;border:1px solid #ef4444;padding:.2rem 1rem;border-radius:8px}\
footer{margin-top:2rem;color:#6b7280;font-size:.8rem}";

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    #[test]
    fn values_are_escaped_and_accounts_listed() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let accounts = [Account {
            provider: "hike".into(),
            account: "a".into(),
            subject: Some("<script>x</script>".into()),
            scopes: vec!["all".into()],
            expires_at: Some(now - Duration::from_secs(1)),
        }];
        let page = home(
            "App & Co",
            &[Button {
                slug: "hike",
                name: "Hike",
            }],
            &accounts,
            Some("Hike connected."),
            now,
            "127.0.0.1:3000",
        );
        assert!(page.contains("<h1>App &amp; Co</h1>"));
        assert!(page.contains("&lt;script&gt;x&lt;/script&gt;"));
        assert!(!page.contains("<script>"));
        assert!(page.contains("id=\"connect-hike\""));
        assert!(page.contains("(expired)"));
        assert!(page.contains("id=\"notice\""));

        assert!(page.contains("<span id=\"served-by\">127.0.0.1:3000</span>"));

        let empty = home("App", &[], &[], None, now, "a");
        assert!(empty.contains("No account connected yet."));
        let page = problem("App", "T <", "m &", "<b>");
        assert!(page.contains("<h1>T &lt;</h1>\n<p>m &amp;</p>"));
        assert!(page.contains("&lt;b&gt;"));
    }
}
