//! `costbridge`: thin entry point (TLS provider, logs, flags), everything else in the library.
#![forbid(unsafe_code)]
use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() -> anyhow::Result<()> {
    cap_malloc_arenas();
    run()
}

#[tokio::main]
async fn run() -> anyhow::Result<()> {
    let json = std::env::var("COSTBRIDGE_LOG_FORMAT").is_ok_and(|f| f == "json");
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
    costbridge_server::cli::run(costbridge_server::cli::Cli::parse()).await
}

/// The variable through which glibc's malloc takes its cap on arenas.
const ARENA_MAX: &str = "MALLOC_ARENA_MAX";

/// Caps glibc's malloc at two arenas per core, unless the operator set a cap. By default each
/// thread that allocates (the runtime's, and each SQLite connection's) may get an arena of its
/// own, up to eight per core, and every arena keeps the memory freed in it: a 100,000-code
/// export on SQLite peaked at 128–153 MB resident, against 109–123 MB with four arenas on two
/// cores (one per core, 99–104 MB, slowed the pages: threads waited on each other's arena;
/// BENCHMARKS.md, session 14). glibc reads the cap from the environment once, at start, and
/// setting it from inside (`mallopt`) would need `unsafe`, so the process becomes itself again
/// with the cap in its environment: the same process id, arguments and environment otherwise.
fn cap_malloc_arenas() {
    use std::os::unix::process::CommandExt;
    if !cfg!(target_env = "gnu") || std::env::var_os(ARENA_MAX).is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let arenas = 2 * std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut args = std::env::args_os();
    let mut command = std::process::Command::new(exe);
    if let Some(name) = args.next() {
        command.arg0(name);
    }
    // `exec` returns only when it failed (the binary was replaced during an upgrade, say): the
    // server then runs on as it is, with glibc's default arenas.
    let error = command.args(args).env(ARENA_MAX, arenas.to_string()).exec();
    eprintln!("costbridge: runs without {ARENA_MAX} (could not restart with it: {error})");
}
