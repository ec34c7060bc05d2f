//! Copies every Rust code block of the README, the facade's README (its
//! docs.rs page) and the book (`docs/**/*.md`) into one module each, exactly
//! as rustdoc would compile it as a doc test:
//!
//! * a block is Rust when its info string is empty, says `rust`, or holds
//!   only rustdoc's own words (`no_run`, `should_panic`, …); `ignore` and
//!   `compile_fail` blocks are skipped, as `text`, `sh`, `toml` are;
//! * `# ` lines (hidden in the rendered page) are kept, without the `# `;
//!   `##` stands for a literal `#`;
//! * a block without `fn main` is wrapped in one; a block ending in `(())`
//!   in `fn main() { fn _inner() -> Result<(), impl Debug> { … } … }`.
//!
//! It also checks that every dependency line of the docs' ```toml blocks
//! other than the facade's (e.g. `tokio = …` with its features) is in this
//! crate's Cargo.toml, so the examples are compiled with what a user adds.
//!
//! Because this crate has every feature of the facade, it checks too that a
//! page whose examples need a non-default feature (`SqliteStore` →
//! `sqlite`, `PostgresStore` → `postgres`, `testkit::` → `testkit`,
//! `middleware::` → `middleware`) names it (`features = ["sqlite"]`, or
//! the feature in backticks), and that every feature a `toml` block asks
//! for exists.
//!
//! Each module is a file named after its source and line
//! (`docs__token-manager.md__L9.rs` in `OUT_DIR`), so a compile error points
//! at the block that broke.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

/// rustdoc's own words in a code block's info string (anything else, e.g.
/// `text`, makes the block not Rust unless `rust` is there too).
fn is_rustdoc_word(word: &str) -> bool {
    matches!(
        word,
        "rust"
            | "no_run"
            | "should_panic"
            | "ignore"
            | "compile_fail"
            | "test_harness"
            | "standalone_crate"
    ) || word.starts_with("ignore-")
        || word.starts_with("edition")
        || (word.starts_with('E')
            && word.len() > 1
            && word[1..].bytes().all(|b| b.is_ascii_digit()))
}

struct Block {
    line: usize,
    info: String,
    code: String,
}

/// The fenced code blocks of a Markdown file, with their first line number.
fn fenced_blocks(text: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((number, line)) = lines.next() {
        let indent = line.len() - line.trim_start().len();
        let rest = line.trim_start();
        let fence_char = match rest.chars().next() {
            Some(c @ ('`' | '~')) => c,
            _ => continue,
        };
        let fence_len = rest.chars().take_while(|&c| c == fence_char).count();
        if fence_len < 3 {
            continue;
        }
        let info = rest[fence_len..].trim().to_owned();
        let mut code = String::new();
        for (_, line) in lines.by_ref() {
            let trimmed = line.trim();
            if trimmed.len() >= fence_len && trimmed.chars().all(|c| c == fence_char) {
                break;
            }
            let strip = line.len() - line.trim_start().len();
            code.push_str(&line[strip.min(indent)..]);
            code.push('\n');
        }
        blocks.push(Block {
            line: number + 1,
            info,
            code,
        });
    }
    blocks
}

/// Whether rustdoc compiles the block (Rust, and neither ignored nor
/// expected to fail).
fn compiled_by_rustdoc(info: &str) -> bool {
    let words: Vec<&str> = info
        .split([',', ' ', '\t'])
        .filter(|w| !w.is_empty())
        .collect();
    let rust = words.contains(&"rust") || words.iter().all(|w| is_rustdoc_word(w));
    let skipped = words
        .iter()
        .any(|w| *w == "ignore" || w.starts_with("ignore-") || *w == "compile_fail");
    rust && !skipped
}

/// The code rustdoc compiles: hidden lines shown, `##` unescaped.
fn unhide(code: &str) -> String {
    let mut out = String::new();
    for line in code.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("##") {
            out.push_str(&line.replacen("##", "#", 1));
        } else if let Some(hidden) = trimmed.strip_prefix("# ") {
            out.push_str(hidden);
        } else if trimmed == "#" {
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// rustdoc's wrapping: inner attributes first, then the code, in a `main`
/// unless it has one.
fn wrap(code: &str) -> String {
    let (attributes, body): (Vec<&str>, Vec<&str>) = code
        .lines()
        .partition(|l| l.trim_start().starts_with("#!["));
    let body = body.join("\n");
    let mut out = String::from("#![allow(unused, dead_code, clippy::all)]\n");
    for attribute in attributes {
        out.push_str(attribute);
        out.push('\n');
    }
    if body.contains("fn main") {
        out.push_str(&body);
    } else if body.trim_end().ends_with("(())") {
        let _ = write!(
            out,
            "fn main() {{\nfn _inner() -> core::result::Result<(), impl core::fmt::Debug> {{\n{body}\n}}\n_inner().unwrap()\n}}"
        );
    } else {
        let _ = write!(out, "fn main() {{\n{body}\n}}");
    }
    out.push('\n');
    out
}

/// The docs' `[dependencies]` blocks name what a user adds besides the
/// facade (tokio and its features): this crate must have exactly those
/// lines, or it would compile the examples with more than a user has.
fn check_dependency_lines(source: &str, block: &Block, manifest: &str, problems: &mut Vec<String>) {
    let manifest_lines: Vec<String> = manifest.lines().map(squash).collect();
    for line in block.code.lines() {
        let line = squash(line);
        if line.starts_with("oauth2-adapters") || !line.contains('=') || line.starts_with('[') {
            continue; // the facade is a path dependency here, with every feature
        }
        if !manifest_lines.contains(&line) {
            problems.push(format!(
                "{source}:{}: `{line}` is not in tests/newcomer/Cargo.toml: add it there as the docs say",
                block.line
            ));
        }
    }
}

/// The non-default features of the facade, and what in an example shows
/// that it needs one.
const FEATURE_MARKERS: [(&str, &str); 4] = [
    ("sqlite", "SqliteStore"),
    ("postgres", "PostgresStore"),
    ("testkit", "testkit::"),
    ("middleware", "middleware::"),
];

/// Whether `text` names `feature` as the docs do: in a `features = [..]`
/// list, or in backticks.
fn names_feature(text: &str, feature: &str) -> bool {
    text.contains(&format!("\"{feature}\"")) || text.contains(&format!("`{feature}`"))
}

/// The facade's features, from its manifest's `[features]` table.
fn facade_features(manifest: &str) -> Vec<String> {
    manifest
        .lines()
        .skip_while(|l| l.trim() != "[features]")
        .skip(1)
        .take_while(|l| !l.trim_start().starts_with('['))
        .filter_map(|l| l.split_once('=').map(|(name, _)| name.trim().to_owned()))
        .filter(|name| !name.is_empty() && !name.starts_with('#'))
        .collect()
}

/// Every feature a facade dependency line of a `toml` block asks for must
/// exist (a misspelt one fails for the user, not here).
fn check_feature_names(source: &str, block: &Block, features: &[String], problems: &mut Vec<String>) {
    for line in block.code.lines() {
        let line = line.trim();
        let Some(list) = line
            .strip_prefix("oauth2-adapters")
            .and_then(|rest| rest.split_once("features"))
            .and_then(|(_, list)| list.split_once('['))
            .and_then(|(_, list)| list.split_once(']'))
            .map(|(list, _)| list)
        else {
            continue;
        };
        for name in list.split(',').map(|n| n.trim().trim_matches('"')) {
            if !name.is_empty() && !features.iter().any(|f| f == name) {
                problems.push(format!(
                    "{source}:{}: the facade has no feature `{name}`",
                    block.line
                ));
            }
        }
    }
}

fn squash(line: &str) -> String {
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn markdown_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            markdown_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "md") {
            out.push(path);
        }
    }
}

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.join("../..").canonicalize().unwrap();
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());

    let mut sources = vec![
        root.join("README.md"),
        root.join("crates/oauth2-adapters/README.md"),
    ];
    markdown_files(&root.join("docs"), &mut sources);
    println!("cargo:rerun-if-changed={}", root.join("docs").display());
    println!(
        "cargo:rerun-if-changed={}",
        root.join("docs/providers").display()
    );

    let manifest = fs::read_to_string(manifest_dir.join("Cargo.toml")).unwrap();
    println!("cargo:rerun-if-changed=Cargo.toml");
    let facade_manifest = root.join("crates/oauth2-adapters/Cargo.toml");
    println!("cargo:rerun-if-changed={}", facade_manifest.display());
    let features = facade_features(&fs::read_to_string(&facade_manifest).unwrap());

    let blocks_dir = out_dir.join("blocks");
    let _ = fs::remove_dir_all(&blocks_dir);
    fs::create_dir_all(&blocks_dir).unwrap();
    let mut modules = String::new();
    let mut problems = Vec::new();
    for source in &sources {
        println!("cargo:rerun-if-changed={}", source.display());
        let relative = source
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let text = fs::read_to_string(source).unwrap_or_else(|e| panic!("reading {relative}: {e}"));
        let mut found = 0;
        let mut page_code = String::new();
        for block in fenced_blocks(&text) {
            if block.info == "toml" {
                check_dependency_lines(&relative, &block, &manifest, &mut problems);
                check_feature_names(&relative, &block, &features, &mut problems);
                continue;
            }
            if !compiled_by_rustdoc(&block.info) {
                continue;
            }
            found += 1;
            let code = unhide(&block.code);
            page_code.push_str(&code);
            if code.contains("cfg(feature") {
                // The newcomer crate has no such features: the block would
                // compile to nothing and pass without being checked.
                problems.push(format!(
                    "{relative}:{}: a `cfg(feature = ..)` in a doc block hides it from this check",
                    block.line
                ));
            }
            let file_name = format!("{}__L{}.rs", relative.replace('/', "__"), block.line);
            let module = format!(
                "{}_l{}",
                relative
                    .replace(|c: char| !c.is_ascii_alphanumeric(), "_")
                    .to_lowercase(),
                block.line
            );
            let path = blocks_dir.join(&file_name);
            fs::write(&path, wrap(&code)).unwrap();
            let _ = writeln!(
                modules,
                "/// `{relative}`, line {} (```{}).\n#[path = {:?}]\nmod {module};",
                block.line,
                block.info,
                path.display().to_string()
            );
        }
        for (feature, marker) in FEATURE_MARKERS {
            if page_code.contains(marker) && !names_feature(&text, feature) {
                problems.push(format!(
                    "{relative}: its examples need the `{feature}` feature (they use `{marker}`) \
                     but the page does not say so"
                ));
            }
        }
        if found == 0 && (relative == "README.md" || relative.ends_with("getting-started.md")) {
            problems.push(format!(
                "{relative}: no Rust block found (is the extraction broken?)"
            ));
        }
    }
    if !problems.is_empty() {
        panic!("newcomer test:\n{}", problems.join("\n"));
    }
    fs::write(out_dir.join("blocks.rs"), modules).unwrap();
}
