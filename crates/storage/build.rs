// `sqlx::migrate!` embeds the migrations when this crate compiles; without this line Cargo
// would not recompile it for a new migration file alone, and the binary would lack it.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
