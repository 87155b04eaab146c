//! The crate's layering rules, checked on the source: the log (`src/log/`) is
//! plain blocking I/O and never names tokio; the protocol (`src/protocol/`)
//! knows nothing of storage or sockets; the engine knows nothing of the
//! protocol. Comments may mention a forbidden name (the rules themselves are
//! written in some); code may not.

use std::fs;
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// The 1-based numbers of the lines whose code (what precedes a `//`
/// comment) names `word`.
fn lines_naming(source: &str, word: &str) -> Vec<usize> {
    source
        .lines()
        .enumerate()
        .filter(|(_, line)| {
            let code = line.split("//").next().unwrap_or_default();
            code.to_ascii_lowercase().contains(word)
        })
        .map(|(i, _)| i + 1)
        .collect()
}

fn lines_naming_tokio(source: &str) -> Vec<usize> {
    lines_naming(source, "tokio")
}

/// `file:line` of every line of code under `src/<dir>` that names a word of
/// `forbidden`.
fn offenders(dir: &str, forbidden: &[&str]) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(dir);
    let files = rust_files(&root);
    assert!(!files.is_empty(), "no sources found under {}", root.display());
    let mut found = Vec::new();
    for file in files {
        let source = fs::read_to_string(&file).unwrap();
        for word in forbidden {
            for line in lines_naming(&source, word) {
                found.push(format!("{}:{line} names {word}", file.display()));
            }
        }
    }
    found
}

#[test]
fn the_protocol_knows_nothing_of_storage_or_sockets() {
    let found = offenders(
        "protocol",
        &["crate::engine", "crate::log", "tokio", "std::net", "std::fs"],
    );
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn the_engine_knows_nothing_of_the_protocol_or_sockets() {
    let found = offenders("engine", &["crate::protocol", "std::net", "tokio::net"]);
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn the_log_never_names_tokio() {
    let log_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/log");
    let files = rust_files(&log_dir);
    assert!(
        files.iter().any(|f| f.ends_with("mod.rs")),
        "no sources found under {}",
        log_dir.display()
    );
    let offenders: Vec<String> = files
        .iter()
        .flat_map(|file| {
            let source = fs::read_to_string(file).unwrap();
            lines_naming_tokio(&source)
                .into_iter()
                .map(move |line| format!("{}:{line}", file.display()))
        })
        .collect();
    assert!(offenders.is_empty(), "src/log/ must not use tokio: {offenders:?}");
}

#[test]
fn the_check_sees_code_and_skips_comments() {
    let source = "//! never uses tokio\nuse std::fs;\nuse tokio::fs as afs; // async\n\
                  let x = 1; // tokio is elsewhere\n#[tokio::test]\n";
    assert_eq!(lines_naming_tokio(source), [3, 5]);
}
