//! `sqlx::migrate!` embeds `migrations/postgres` at compile time; without this, a new
//! migration file would not rebuild the crate and a test build would run without it.
fn main() {
    println!("cargo:rerun-if-changed=../migrations/postgres");
}
