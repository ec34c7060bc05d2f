//! Every spec example of the book (the ```` ```toml,spec ```` blocks of
//! `docs/provider-specs.md` and `docs/adding-a-provider.md`) loads, merged
//! over a minimal spec (most are fragments: `[response]` alone, say; a
//! whole spec's keys replace the minimal one's). Specs refuse unknown keys, so a key the page misspells or
//! the code no longer has fails here, naming the block.

use std::path::Path;

use oauth2_adapters::ProviderSpec;
use toml::{Table, Value};

/// The smallest spec a fragment is merged into.
const BASE: &str = r#"
id = "docs-example"
[authorize]
url = "https://auth.example.com/authorize"
[token]
url = "https://auth.example.com/token"
"#;

/// The `toml,spec` blocks of a page, with their first line numbers.
fn spec_blocks(text: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (number, line) in text.lines().enumerate() {
        match &mut current {
            None if line.trim() == "```toml,spec" => current = Some((number + 1, String::new())),
            Some(_) if line.trim() == "```" => blocks.extend(current.take()),
            Some((_, body)) => {
                body.push_str(line);
                body.push('\n');
            }
            None => {}
        }
    }
    blocks
}

/// `fragment`'s keys over `base`'s, tables merged key by key.
fn merge(base: &mut Table, fragment: Table) {
    for (key, value) in fragment {
        match (base.get_mut(&key), value) {
            (Some(Value::Table(into)), Value::Table(from)) => merge(into, from),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

#[test]
fn every_spec_example_in_the_book_loads() {
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
    let mut checked = 0;
    let mut broken = Vec::new();
    for page in ["provider-specs.md", "adding-a-provider.md"] {
        let text = std::fs::read_to_string(docs.join(page)).unwrap();
        for (line, block) in spec_blocks(&text) {
            checked += 1;
            let fragment: Table = match toml::from_str(&block) {
                Ok(table) => table,
                Err(e) => {
                    broken.push(format!("{page}:{line}: not TOML: {e}"));
                    continue;
                }
            };
            let mut whole: Table = toml::from_str(BASE).unwrap();
            merge(&mut whole, fragment);
            let json = serde_json::to_string(&whole).unwrap();
            if let Err(e) = ProviderSpec::from_json(&json) {
                broken.push(format!("{page}:{line}: {e}"));
            }
        }
    }
    assert!(checked >= 9, "only {checked} spec blocks found");
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}
