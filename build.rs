//! Rebuilds the binary when a built-in template changes: they are embedded with include_dir.

fn main() {
    println!("cargo:rerun-if-changed=templates");
    println!("cargo:rerun-if-changed=build.rs");
}
