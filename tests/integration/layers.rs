//! The layer rules of the design, checked by reading `src/`: a module may
//! only name the modules below it, and each outside library stays in the
//! one layer that owns it. A new import across a layer fails here, so the
//! layers stay true without anyone re-reading the tree.

use std::path::{Path, PathBuf};

/// Which modules of the crate each layer may not name.
const FORBIDDEN: &[(&str, &[&str])] = &[
    (
        "src/domain",
        &[
            "auth", "services", "http", "storage", "mail", "config", "startup", "state", "cli",
        ],
    ),
    (
        "src/storage",
        &[
            "auth", "services", "http", "mail", "startup", "state", "cli",
        ],
    ),
    (
        "src/mail",
        &["auth", "services", "http", "startup", "state", "cli"],
    ),
    ("src/auth", &["services", "http", "startup", "state", "cli"]),
    ("src/services", &["http", "startup", "cli"]),
    (
        "src/config/",
        &[
            "auth", "services", "http", "storage", "mail", "startup", "state", "cli",
        ],
    ),
];

/// Within `http`, the JSON API and the hosted pages do not name each other:
/// what both need (the OAuth flow's cookie) sits in `http/` itself, and a
/// browser leg that answers pages lives in `pages/` even when its path is
/// under `/api`. A path segment (`super::pages`) also catches `super::…`
/// chains of any depth.
const SIBLINGS: &[(&str, &[&str])] = &[
    ("src/http/api/", &["http::pages", "super::pages"]),
    ("src/http/pages/", &["http::api", "super::api"]),
];

/// Outside libraries and the only folders that may use them.
const OWNED: &[(&str, &[&str])] = &[
    ("rusqlite", &["src/storage"]),
    ("r2d2", &["src/storage"]),
    ("postgres", &["src/storage"]),
    ("actix_web", &["src/http"]),
    ("actix_http", &["src/http"]),
    ("askama", &["src/http", "src/mail"]),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The file's code without comments (doc comments may name anything).
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.split("//").next().unwrap_or("")))
}

/// `crate::x` module names a line refers to.
fn crate_refs(line: &str) -> Vec<&str> {
    line.match_indices("crate::")
        .map(|(i, _)| {
            let rest = &line[i + 7..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            &rest[..end]
        })
        .collect()
}

/// Whether `line` names the module path `path`, also inside a `use` group
/// (`crate::http::{pages, …}`).
fn names_path(line: &str, path: &str) -> bool {
    if line.contains(&format!("{path}::")) || line.contains(&format!("{path};")) {
        return true;
    }
    let (parent, last) = path.rsplit_once("::").unwrap_or(("", path));
    line.match_indices(&format!("{parent}::{{")).any(|(i, _)| {
        line[i..]
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .any(|w| w == last)
    })
}

fn violations(root: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let mut found = Vec::new();
    for file in files {
        let rel = file
            .strip_prefix(root)
            .unwrap_or(&file)
            .to_string_lossy()
            .replace('\\', "/");
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        for (n, line) in code_lines(&text) {
            for (layer, banned) in FORBIDDEN {
                if !rel.starts_with(layer) {
                    continue;
                }
                for module in crate_refs(line) {
                    if banned.contains(&module) {
                        found.push(format!("{rel}:{n}: {layer} names crate::{module}"));
                    }
                }
            }
            for (dir, banned) in SIBLINGS {
                if !rel.starts_with(dir) {
                    continue;
                }
                for path in banned.iter().filter(|p| names_path(line, p)) {
                    found.push(format!("{rel}:{n}: {dir} names {path}"));
                }
            }
            for (lib, owners) in OWNED {
                let used = line.contains(&format!("{lib}::"))
                    || line.trim_start().starts_with(&format!("use {lib}"));
                if used && !owners.iter().any(|o| rel.starts_with(o)) {
                    found.push(format!("{rel}:{n}: {lib} outside {owners:?}"));
                }
            }
        }
    }
    found
}

#[test]
fn every_layer_names_only_the_layers_below_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let found = violations(root);
    assert!(
        found.is_empty(),
        "layer rules broken (see docs/architecture.md):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_layer_check_sees_a_violation() {
    // The checker itself: a storage file naming services, and actix outside http.
    let dir = tempfile::tempdir().expect("temp dir");
    let storage = dir.path().join("src/storage");
    std::fs::create_dir_all(&storage).expect("dirs");
    std::fs::write(
        storage.join("bad.rs"),
        "// crate::http in a comment is fine\nuse crate::services::orgs::Actor;\nfn f() { actix_web::HttpResponse::Ok(); }\n",
    )
    .expect("write");
    let found = violations(dir.path());
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found[0].contains("crate::services"));
    assert!(found[1].contains("actix_web"));
}

#[test]
fn the_layer_check_sees_the_api_and_the_pages_naming_each_other() {
    let dir = tempfile::tempdir().expect("temp dir");
    let api = dir.path().join("src/http/api");
    let pages = dir.path().join("src/http/pages/auth");
    std::fs::create_dir_all(&api).expect("dirs");
    std::fs::create_dir_all(&pages).expect("dirs");
    std::fs::write(
        api.join("bad.rs"),
        "use crate::http::pages::{Ctx, PageError};\nuse crate::http::{extract, pages};\nuse crate::http::oauth_flow::read_flow;\n",
    )
    .expect("write");
    std::fs::write(
        pages.join("bad.rs"),
        "fn f() { super::super::super::api::oauth::routes; }\n",
    )
    .expect("write");
    let mut found = violations(dir.path());
    found.sort();
    assert_eq!(found.len(), 3, "{found:?}");
    assert!(found[0].contains("src/http/api/bad.rs:1") && found[0].contains("http::pages"));
    assert!(found[1].contains("src/http/api/bad.rs:2"));
    assert!(found[2].contains("src/http/pages/auth/bad.rs:1") && found[2].contains("super::api"));
}
