//! Writing results: aligned tables for people, one JSON document for
//! programs. Text from the database (keys, accounts) has its control
//! characters escaped before it reaches a terminal.

use std::io::Write;

use crate::error::{CliError, CliResult};

/// `text` with control characters escaped (`\u{1b}`, `\n`, …).
pub fn printable(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Columns padded to their widest cell, separated by two spaces; the
/// last column is not padded.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let width = |cell: &str| cell.chars().count();
    let mut widths: Vec<usize> = headers.iter().map(|h| width(h)).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(width(cell));
            }
        }
    }
    let mut out = String::new();
    let headers: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&headers).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < row.len() {
                let pad = widths.get(i).map_or(0, |w| w.saturating_sub(width(cell)));
                line.extend(std::iter::repeat_n(' ', pad + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Writes `text` to stdout. A closed pipe (`| head`) ends the output
/// quietly rather than failing.
pub fn print(text: &str) -> CliResult {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError::Io {
            context: "writing the output",
            source: err,
        }),
        _ => Ok(()),
    }
}

/// Writes `value` to stdout as one pretty JSON document.
pub fn print_json(value: &serde_json::Value) -> CliResult {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".to_owned());
    text.push('\n');
    print(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(printable("plain|acct|"), "plain|acct|");
        assert_eq!(printable("a\u{1b}[31mb\n"), "a\\u{1b}[31mb\\n");
    }

    #[test]
    fn tables_align() {
        let text = table(
            &["A", "LONGER"],
            &[
                vec!["wide cell".into(), "x".into()],
                vec!["b".into(), "y".into()],
            ],
        );
        assert_eq!(text, "A          LONGER\nwide cell  x\nb          y\n");
    }
}
