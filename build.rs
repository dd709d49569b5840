//! Rebuilds when a migration is added: `sqlx::migrate!` embeds the folders'
//! contents at compile time, but cargo does not otherwise notice new files.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
