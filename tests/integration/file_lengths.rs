//! Files under `src/` stay short enough to read in one sitting: one over
//! [`LIMIT`] lines must say why in its `//!` header, in a sentence that gives
//! its length ("About 520 lines: …"), so a file that grew by appending is
//! noticed when it crosses the line rather than years later.

use std::path::{Path, PathBuf};

const LIMIT: usize = 450;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Whether the file's `//!` header gives a reason that names its length.
fn says_why(text: &str) -> bool {
    text.lines()
        .take_while(|l| l.starts_with("//!") || l.trim().is_empty())
        .any(|l| l.starts_with("//!") && l.contains(" lines"))
}

/// Files over the limit without a reason, as `path (lines)`.
fn unexplained(root: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let mut found: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let text = std::fs::read_to_string(f).ok()?;
            let n = text.lines().count();
            (n > LIMIT && !says_why(&text)).then(|| {
                let rel = f.strip_prefix(root).unwrap_or(f).display();
                format!("{rel} ({n})")
            })
        })
        .collect();
    found.sort();
    found
}

#[test]
fn every_long_source_file_says_why_it_is_long() {
    let found = unexplained(Path::new(env!("CARGO_MANIFEST_DIR")));
    assert!(
        found.is_empty(),
        "files over {LIMIT} lines without a reason in their //! header \
         (split them, or say why: \"About N lines: …\"):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_length_check_sees_a_long_file_and_accepts_a_reason() {
    let dir = tempfile::tempdir().expect("temp dir");
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).expect("dirs");
    let body = "fn f() {}\n".repeat(LIMIT);
    std::fs::write(src.join("long.rs"), format!("//! Does things.\n\n{body}")).expect("write");
    std::fs::write(
        src.join("explained.rs"),
        format!("//! Does things.\n//! About 452 lines: half of it is tests.\n\n{body}"),
    )
    .expect("write");
    std::fs::write(src.join("short.rs"), "//! Short.\nfn f() {}\n").expect("write");
    assert_eq!(
        unexplained(dir.path()),
        vec!["src/long.rs (452)".to_string()]
    );
}
