//! `tokens refresh KEY --provider-config FILE`: one refresh now, through
//! the token manager (so the store's lease keeps it from racing the
//! application's own refreshes), then a clean shutdown.

use std::time::{Duration, SystemTime};

use oauth2_adapters::{TokenKey, TokenManager};
use serde_json::json;

use super::Context;
use crate::error::{CliError, CliResult};
use crate::output::{print, print_json, printable};
use crate::provider_config::ProviderConfig;
use crate::status;

/// How long the shutdown waits for the new token's write to land.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(30);

/// Runs `tokens refresh`.
pub async fn run(ctx: &Context, key: &TokenKey, config: &ProviderConfig) -> CliResult {
    let configured = config.provider_id();
    if key.provider() != configured {
        return Err(CliError::ProviderMismatch {
            key: printable(key.as_str()),
            key_provider: printable(key.provider().as_str()),
            configured: printable(configured.as_str()),
            path: config.path().to_owned(),
        });
    }
    let store = ctx.db.token_store();
    let shown = printable(key.as_str());
    let before = store
        .load(key)
        .await
        .map_err(CliError::library(format!("reading the token {shown}")))?
        .ok_or_else(|| CliError::NotFound(shown.clone()))?;
    let provider = config.build()?;
    let manager = TokenManager::builder()
        .store(store)
        .provider(provider)
        .build()
        .map_err(CliError::library("configuring the token manager"))?;
    let refreshed = refresh(&manager, key, before.version).await;
    let current = match &refreshed {
        Ok(_) => manager.current_token(key).await.ok().flatten(),
        Err(_) => None,
    };
    let report = manager.shutdown(SHUTDOWN_DEADLINE).await;
    let access = refreshed.map_err(CliError::library(format!("refreshing {shown}")))?;
    if !report.is_clean() {
        return Err(CliError::NotPersisted(shown));
    }

    let now = SystemTime::now();
    let expires_at_ms = access.expires_at().map(status::unix_ms);
    let refresh_expires_at_ms = current
        .as_ref()
        .and_then(|t| t.refresh_expires_at)
        .map(status::unix_ms);
    if ctx.json {
        let seconds = |ms: Option<u64>| ms.map(|ms| status::seconds_left(ms, now));
        return print_json(&json!({
            "key": key.as_str(),
            "previous_version": before.version,
            "version": access.version(),
            "expires_at": expires_at_ms.map(status::absolute),
            "expires_in_secs": seconds(expires_at_ms),
            "refresh_expires_at": refresh_expires_at_ms.map(status::absolute),
            "refresh_expires_in_secs": seconds(refresh_expires_at_ms),
        }));
    }
    let mut text = format!(
        "refreshed {shown}: version {} -> {}, expires {}\n",
        before.version,
        access.version(),
        status::expiry(expires_at_ms, now)
    );
    if let Some(at) = refresh_expires_at_ms {
        text.push_str(&format!(
            "refresh token expires {}\n",
            status::expiry(Some(at), now)
        ));
    }
    print(&text)
}

/// One refresh: `get` refreshes a token that is due or expired; a fresh
/// one is renewed with `force_refresh`.
async fn refresh(
    manager: &TokenManager,
    key: &TokenKey,
    stored_version: u64,
) -> oauth2_adapters::Result<oauth2_adapters::AccessToken> {
    let access = manager.get(key).await?;
    if access.version() > stored_version {
        return Ok(access);
    }
    manager.force_refresh(key, &access).await
}
