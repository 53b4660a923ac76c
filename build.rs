//! Rebuild when embedded files change (include_dir! and rust-embed do not
//! track new files on their own).
fn main() {
    for dir in ["migrations", "templates", "static"] {
        println!("cargo:rerun-if-changed={dir}");
    }
}
