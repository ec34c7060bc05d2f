//! `tokens delete KEY`: removes one token and its refresh lease, after a
//! confirmation unless `--yes`. Works on rows that cannot be decoded too
//! (the store-sql README's advice for a row no key opens).

use std::io::{BufRead, Write};

use oauth2_adapters::TokenKey;
use serde_json::json;

use super::Context;
use crate::error::{CliError, CliResult};
use crate::output::{print, print_json, printable};

/// Runs `tokens delete`.
pub async fn run(ctx: &Context, key: &TokenKey, yes: bool) -> CliResult {
    let shown = printable(key.as_str());
    if !ctx.db.exists(key.as_str()).await? {
        return Err(CliError::NotFound(shown));
    }
    if !yes && !confirm(&shown)? {
        return Err(CliError::NotConfirmed);
    }
    ctx.db
        .token_store()
        .delete(key)
        .await
        .map_err(CliError::library(format!("deleting {shown}")))?;
    if ctx.json {
        print_json(&json!({ "deleted": key.as_str() }))
    } else {
        print(&format!("deleted {shown}\n"))
    }
}

/// Asks on stderr, reads one line of stdin: true for `y` or `yes`. End of
/// input is a no.
fn confirm(shown: &str) -> CliResult<bool> {
    let io = |source| CliError::Io {
        context: "asking for confirmation",
        source,
    };
    let mut stderr = std::io::stderr().lock();
    write!(
        stderr,
        "Delete the token for {shown}? Its user must then sign in again. [y/N] "
    )
    .and_then(|()| stderr.flush())
    .map_err(io)?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).map_err(io)?;
    let answer = answer.trim().to_ascii_lowercase();
    Ok(answer == "y" || answer == "yes")
}
