//! The connected accounts: saved through the token manager, listed from
//! the store without their secrets.

use std::time::SystemTime;

use oauth2_adapters::manager::TokenManager;
use oauth2_adapters::{Error, Token, TokenKey, TokenStore};

use crate::BoxError;

/// What the home page shows of one stored token: never a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Account {
    /// The provider's id (`hypersku`, `hike`).
    pub(crate) provider: String,
    /// The account part of the key: the subject, or an id the app made up.
    pub(crate) account: String,
    /// The account as the provider named it, if it did.
    pub(crate) subject: Option<String>,
    /// The scopes granted.
    pub(crate) scopes: Vec<String>,
    /// When the access token expires, if known.
    pub(crate) expires_at: Option<SystemTime>,
}

/// Stores a new sign-in's token under (provider, account, scopes), the
/// account being the token's subject or, when the provider names none, a
/// new random id. Returns the key.
pub(crate) async fn save(manager: &TokenManager, token: Token) -> Result<TokenKey, BoxError> {
    let account = match &token.subject {
        Some(subject) if !subject.is_empty() => subject.clone(),
        _ => format!("{}-account-{:08x}", token.provider, getrandom::u32()?),
    };
    let key = TokenKey::with_scopes(&token.provider, &account, &token.scopes);
    manager.insert(key.clone(), token).await?;
    Ok(key)
}

/// Every stored account, sorted by provider then account.
pub(crate) async fn list(store: &dyn TokenStore) -> Result<Vec<Account>, Error> {
    let mut accounts = Vec::new();
    for key in store.keys().await? {
        let Some(stored) = store.load(&key).await? else {
            continue; // removed meanwhile
        };
        let token = Token::from_record(stored.record);
        accounts.push(Account {
            provider: key.provider().to_string(),
            account: key.account(),
            subject: token.subject,
            scopes: token.scopes,
            expires_at: token.expires_at,
        });
    }
    accounts.sort_by(|a, b| (&a.provider, &a.account).cmp(&(&b.provider, &b.account)));
    Ok(accounts)
}
