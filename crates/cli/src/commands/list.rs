//! `tokens list`: one row per stored token, never a token.

use std::time::SystemTime;

use oauth2_adapters::store_sql::DecryptionError;
use oauth2_adapters::{Error, TokenKey, TokenStore};
use serde_json::json;

use super::Context;
use crate::cli::{ListArgs, Status};
use crate::database::RawRow;
use crate::error::{CliError, CliResult};
use crate::output::{print, print_json, printable, table};
use crate::status::{self, Lifetimes};

/// What is shown of one row.
struct Entry {
    key: String,
    provider: String,
    parsed: Option<TokenKey>,
    status: Status,
    expires_at_ms: Option<u64>,
    /// `None` when the row is unreadable (nothing is known of it).
    refresh: Option<RefreshToken>,
    version: i64,
    /// Why an unreadable row is unreadable.
    reason: Option<String>,
}

/// What is known of the refresh token.
#[derive(Clone, Copy)]
enum RefreshToken {
    None,
    Unknown,
    Expires(u64),
}

/// Runs `tokens list`.
pub async fn run(ctx: &Context, args: &ListArgs) -> CliResult {
    let store = ctx.db.token_store();
    let now = SystemTime::now();
    let mut entries = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = ctx.db.rows(after.as_deref()).await?;
        let Some(last) = page.last() else {
            break;
        };
        after = Some(last.key.clone());
        for row in page {
            if args.provider.as_ref().is_some_and(|p| *p != row.provider) {
                continue;
            }
            let Some(entry) = entry(ctx, &*store, row, now).await? else {
                continue;
            };
            if args.status.is_none_or(|s| s == entry.status) {
                entries.push(entry);
            }
        }
    }
    if ctx.json {
        print_json(&serde_json::Value::Array(
            entries.iter().map(|e| as_json(e, now)).collect(),
        ))
    } else {
        print(&as_text(&entries, now, args))
    }
}

/// Reads one row; `None` if it was deleted meanwhile.
async fn entry(
    ctx: &Context,
    store: &dyn TokenStore,
    row: RawRow,
    now: SystemTime,
) -> CliResult<Option<Entry>> {
    let unreadable = |row: RawRow, reason: String| {
        let (expires_at_ms, _) = Lifetimes::from_raw(&row.record).unwrap_or_default();
        Entry {
            parsed: TokenKey::parse(&row.key),
            key: row.key,
            provider: row.provider,
            status: Status::Unreadable,
            expires_at_ms,
            refresh: None,
            version: row.version,
            reason: Some(reason),
        }
    };
    let Some(key) = TokenKey::parse(&row.key) else {
        let reason = "its key is not `provider|account|scopes`".to_owned();
        return Ok(Some(unreadable(row, reason)));
    };
    match store.load(&key).await {
        Ok(Some(stored)) => {
            let record = &stored.record;
            let lifetimes = Lifetimes::of(record);
            let refresh = match (&record.refresh_token, record.refresh_expires_at_ms) {
                (None, _) => RefreshToken::None,
                (Some(_), None) => RefreshToken::Unknown,
                (Some(_), Some(at)) => RefreshToken::Expires(at),
            };
            Ok(Some(Entry {
                status: lifetimes.status(&row.provider, now),
                key: row.key,
                provider: row.provider,
                parsed: Some(key),
                expires_at_ms: record.expires_at_ms,
                refresh: Some(refresh),
                version: i64::try_from(stored.version).unwrap_or(i64::MAX),
                reason: None,
            }))
        }
        Ok(None) => Ok(None),
        Err(error) => match why_unreadable(&error, ctx.keys.is_some()) {
            Some(reason) => Ok(Some(unreadable(row, reason))),
            None => Err(CliError::library(format!(
                "reading the token {}",
                printable(&row.key)
            ))(error)),
        },
    }
}

/// Why a row cannot be decoded, from the store's error; `None` when the
/// error is not about the row (the database failing).
fn why_unreadable(error: &Error, have_keys: bool) -> Option<String> {
    let Error::Store { message, source } = error else {
        return None;
    };
    let decryption = source
        .as_deref()
        .and_then(|source| source.downcast_ref::<DecryptionError>());
    if decryption.is_none() && !message.starts_with("stored ") {
        return None;
    }
    let hint = if have_keys {
        ""
    } else {
        " (no --keys were given)"
    };
    // The store's messages name the key, the field and the key id; never a value.
    Some(format!("{message}{hint}"))
}

fn as_json(entry: &Entry, now: SystemTime) -> serde_json::Value {
    let seconds = |ms: Option<u64>| ms.map(|ms| status::seconds_left(ms, now));
    let (has_refresh_token, refresh_expires_at_ms) = match entry.refresh {
        None => (None, None),
        Some(RefreshToken::None) => (Some(false), None),
        Some(RefreshToken::Unknown) => (Some(true), None),
        Some(RefreshToken::Expires(at)) => (Some(true), Some(at)),
    };
    json!({
        "key": entry.key,
        "provider": entry.provider,
        "account": entry.parsed.as_ref().map(TokenKey::account),
        "scopes": entry.parsed.as_ref().map(TokenKey::scopes),
        "status": entry.status,
        "expires_at": entry.expires_at_ms.map(status::absolute),
        "expires_in_secs": seconds(entry.expires_at_ms),
        "has_refresh_token": has_refresh_token,
        "refresh_expires_at": refresh_expires_at_ms.map(status::absolute),
        "refresh_expires_in_secs": seconds(refresh_expires_at_ms),
        "version": entry.version,
        "reason": entry.reason,
    })
}

fn as_text(entries: &[Entry], now: SystemTime, args: &ListArgs) -> String {
    if entries.is_empty() {
        let filtered = args.provider.is_some() || args.status.is_some();
        return if filtered {
            "no stored token matches\n".to_owned()
        } else {
            "no tokens are stored\n".to_owned()
        };
    }
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            let expires = match (e.expires_at_ms, e.status) {
                (None, Status::Unreadable) => "?".to_owned(),
                (at, _) => status::expiry(at, now),
            };
            let refresh = match e.refresh {
                None => "?".to_owned(),
                Some(RefreshToken::None) => "none".to_owned(),
                Some(RefreshToken::Unknown) => "no known expiry".to_owned(),
                Some(RefreshToken::Expires(at)) => status::expiry(Some(at), now),
            };
            vec![
                e.status.as_str().to_owned(),
                printable(&e.key),
                printable(&e.provider),
                expires,
                refresh,
                e.version.to_string(),
            ]
        })
        .collect();
    let mut text = table(
        &[
            "STATUS",
            "KEY",
            "PROVIDER",
            "EXPIRES",
            "REFRESH TOKEN",
            "VERSION",
        ],
        &rows,
    );
    for e in entries {
        if let Some(reason) = &e.reason {
            text.push_str(&format!(
                "\nunreadable {}: {}",
                printable(&e.key),
                printable(reason)
            ));
        }
    }
    if entries.iter().any(|e| e.reason.is_some()) {
        text.push('\n');
    }
    let count = |s: Status| entries.iter().filter(|e| e.status == s).count();
    text.push_str(&format!(
        "\n{} token{}: {} fresh, {} due, {} need re-authorization, {} unreadable\n",
        entries.len(),
        if entries.len() == 1 { "" } else { "s" },
        count(Status::Fresh),
        count(Status::Due),
        count(Status::Reauth),
        count(Status::Unreadable),
    ));
    text
}
