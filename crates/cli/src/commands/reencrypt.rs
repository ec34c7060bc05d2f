//! `tokens reencrypt [--purge]`: `reencrypt_all` under `--keys`, with a
//! progress bar, then what stays on disk and `purge_superseded_rows`.
//!
//! `reencrypt_all` is one call; the bar follows it by counting, twice a
//! second, the rows whose access token is under the current key (the
//! documented column format). It is drawn on stderr, and only when both
//! stdout and stderr are terminals and `--json` is off.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use super::Context;
use crate::cli::ReencryptArgs;
use crate::database::Database;
use crate::error::{CliError, CliResult};
use crate::output::{print, print_json};

/// How often the bar re-counts.
const POLL: Duration = Duration::from_millis(500);

/// Runs `tokens reencrypt`.
pub async fn run(ctx: &Context, args: &ReencryptArgs) -> CliResult {
    let keys = ctx
        .keys
        .as_ref()
        .ok_or(CliError::KeysRequired("tokens reencrypt"))?;
    let key_id = keys.current_key_id().to_owned();
    let (total, under) = ctx.db.count_under(&key_id).await?;
    let bar = progress_bar(!ctx.json, total, under, &key_id);

    let rewritten = {
        let poll = follow(&ctx.db, &bar, &key_id, total);
        tokio::pin!(poll);
        let reencrypt = ctx.db.reencrypt_all();
        tokio::pin!(reencrypt);
        loop {
            tokio::select! {
                result = &mut reencrypt => break result,
                () = &mut poll => {}
            }
        }
    };
    let rewritten = match rewritten {
        Ok(rewritten) => rewritten,
        Err(err) => {
            bar.abandon();
            return Err(err);
        }
    };
    let sqlite = ctx.db.purges_after_reencrypting();
    let purged = if sqlite {
        true
    } else if args.purge {
        bar.set_message("purging superseded row versions (VACUUM (FULL))");
        ctx.db
            .purge_superseded_rows()
            .await
            .inspect_err(|_| bar.abandon())?;
        true
    } else {
        false
    };
    bar.finish_and_clear();
    let (rows, _) = ctx.db.count_under(&key_id).await?;

    if ctx.json {
        return print_json(&json!({
            "current_key_id": key_id,
            "rewritten": rewritten,
            "rows": rows,
            "purged": purged,
        }));
    }
    let mut text = if rewritten == 0 {
        format!("nothing to re-encrypt: every row ({rows}) is under key `{key_id}`\n")
    } else {
        format!("re-encrypted {rewritten} of {rows} rows under key `{key_id}`\n")
    };
    text.push_str(match (sqlite, purged) {
        (true, _) => {
            "Superseded row versions were purged from the SQLite file and its write-ahead log \
             (purge_superseded_rows: VACUUM, then wal_checkpoint(TRUNCATE)). Copies and backups \
             of the file made before still hold them.\n"
        }
        (false, true) => {
            "Superseded row versions were purged from the table's pages \
             (purge_superseded_rows: VACUUM (FULL)). The WAL, its archive, standbys and backups \
             made before still hold them: see \"What stays on disk\" in the store-sql README.\n"
        }
        (false, false) => {
            "The earlier versions of rewritten rows (in clear text, or under old keys) stay in \
             the table's pages until PostgreSQL reuses the space: run again with --purge \
             (purge_superseded_rows: VACUUM (FULL), which locks the table while it runs). See \
             \"What stays on disk\" in the store-sql README.\n"
        }
    });
    text.push_str(&format!(
        "Once every instance has `{key_id}` as its current key and this command rewrites \
         nothing, the old keys can be removed from the key rings.\n"
    ));
    print(&text)
}

/// A bar of `total` rows at `under`, or a hidden one.
fn progress_bar(wanted: bool, total: u64, under: u64, key_id: &str) -> ProgressBar {
    let terminal = std::io::stdout().is_terminal() && std::io::stderr().is_terminal();
    if !(wanted && terminal) {
        return ProgressBar::hidden();
    }
    // Set up hidden, so that the first frame drawn is the right one.
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{bar:30}] {pos}/{len} rows under key {msg} ({elapsed})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(format!("`{key_id}`"));
    bar.set_position(under);
    bar.set_draw_target(ProgressDrawTarget::stderr());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// Moves the bar as rows come under the key; stops counting once all
/// are (so as not to hold a reader while SQLite checkpoints its log).
async fn follow(db: &Database, bar: &ProgressBar, key_id: &str, total: u64) {
    if bar.is_hidden() {
        return std::future::pending().await;
    }
    loop {
        tokio::time::sleep(POLL).await;
        match db.count_under(key_id).await {
            Ok((now_total, under)) => {
                bar.set_length(now_total);
                bar.set_position(under);
                if under >= now_total.max(total) {
                    if db.purges_after_reencrypting() {
                        bar.set_message(format!("`{key_id}`; purging superseded row versions"));
                    }
                    return std::future::pending().await;
                }
            }
            Err(_) => return std::future::pending().await,
        }
    }
}
