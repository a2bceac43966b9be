//! Build script.

// The catalog is embedded at compile time; rebuild when it changes.
fn main() {
    println!("cargo:rerun-if-changed=../../catalog/models.toml");
}
