//! The `costbridge` commands. `main.rs` only parses and dispatches here.
use crate::app::App;
use crate::config::{EXAMPLE, Settings};
use crate::error::ApiError;
use crate::ops::{self, imports};
use crate::secrets::{self, Cipher};
use crate::state::AppState;
use crate::{demo, password};
use clap::{Args, Parser, Subcommand};
use costbridge_domain::Permissions;
use costbridge_storage::users::{NewUser, User};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "costbridge",
    version,
    about = "Cost code lists and their accounting acceptance into your ERP"
)]
pub struct Cli {
    /// A TOML settings file (see `costbridge default-config`).
    #[arg(long, global = true, env = "COSTBRIDGE_CONFIG")]
    pub config: Option<PathBuf>,
    /// sqlite://FILE or postgres://USER@HOST/DB (default sqlite://costbridge.db).
    // The variable's value is not printed by --help: it may hold the database's password.
    #[arg(
        long,
        global = true,
        env = "COSTBRIDGE_DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the HTTP server and the export worker.
    Serve(ServeArgs),
    /// Create a company and its first user (admin everywhere); prints {company_id, user_id, token}.
    Bootstrap {
        #[arg(long)]
        company: String,
        #[arg(long)]
        email: String,
        /// Read from COSTBRIDGE_BOOTSTRAP_PASSWORD or, with neither, the first line of
        /// standard input: on the command line it is in `ps` and the shell's history.
        #[arg(long, env = "COSTBRIDGE_BOOTSTRAP_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        #[arg(long, default_value = "Administrator")]
        name: String,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Print a commented example settings file.
    DefaultConfig,
    /// Import a CSV file (full_code,description,active) into a list, all or nothing.
    Import(ListArgs),
    /// Export a list as CSV (to --file, or standard output).
    Export(ListArgs),
    /// Email notifications: test the SMTP settings, or run the daily summary now.
    #[command(subcommand)]
    Notify(NotifyCommand),
    /// The key that encrypts connector secrets in the database.
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// Check the stored data's invariants (codes and their queue items, submissions and their
    /// audit trail); only reads. Exits 1 and lists each problem when one is broken.
    Check {
        /// Check one company only.
        #[arg(long)]
        company: Option<i64>,
    },
}

#[derive(Subcommand)]
pub enum NotifyCommand {
    /// Send a test message through the configured SMTP server and print its answer.
    Test {
        #[arg(long)]
        to: String,
    },
    /// Queue today's daily summary now, whatever the hour (still once per person per day), and
    /// deliver the emails that are due. For cron, or to try it by hand.
    DailySummary,
}

#[derive(Subcommand)]
pub enum SecretsCommand {
    /// Re-encrypt every stored secret with a new key, in one transaction. The current key is
    /// the configured one; afterwards point `[secrets] key_file` at the new file and restart.
    Rotate {
        /// The new key (32 bytes in base64); created, readable by its owner only, if missing.
        #[arg(long)]
        new_key_file: PathBuf,
    },
}

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "COSTBRIDGE_LISTEN")]
    pub listen: Option<String>,
    /// On an empty database, create a demo company and print its logins.
    #[arg(long)]
    pub demo: bool,
}

#[derive(Args)]
pub struct ListArgs {
    #[arg(long)]
    pub company: i64,
    #[arg(long)]
    pub list: i64,
    /// The CSV file to read (import) or write (export; default standard output).
    #[arg(long)]
    pub file: Option<PathBuf>,
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut settings = Settings::load(cli.config.as_deref())?;
    if let Some(url) = cli.database_url {
        settings.server.database_url = url;
    }
    if settings.server.database_url.starts_with("sqlite:") {
        cap_malloc_arenas();
    }
    match cli.command {
        Command::Serve(args) => serve(settings, args).await,
        Command::Bootstrap {
            company,
            email,
            password,
            name,
        } => {
            let password = match password {
                Some(p) => p,
                None => first_line_of_stdin(&email)?,
            };
            bootstrap(&settings, &company, &email, &password, &name).await
        }
        Command::Migrate => {
            let db = settings.database().await?;
            db.migrate().await?;
            eprintln!("migrations applied to {}", db.backend());
            Ok(())
        }
        Command::DefaultConfig => {
            print!("{EXAMPLE}");
            Ok(())
        }
        Command::Import(args) => import(&settings, args).await,
        Command::Export(args) => export(&settings, args).await,
        Command::Notify(cmd) => notify(&settings, cmd).await,
        Command::Secrets(SecretsCommand::Rotate { new_key_file }) => {
            rotate(&settings, &new_key_file).await
        }
        Command::Check { company } => {
            let db = settings.database().await?;
            let problems = db.integrity_violations(company).await?;
            for p in &problems {
                println!("{p}");
            }
            if problems.is_empty() {
                eprintln!("every invariant holds");
                Ok(())
            } else {
                anyhow::bail!("{} invariant(s) broken", problems.len())
            }
        }
    }
}

async fn notify(settings: &Settings, cmd: NotifyCommand) -> anyhow::Result<()> {
    match cmd {
        NotifyCommand::Test { to } => {
            let answer = crate::mail::send_test(&settings.mail, &to).await?;
            println!("test message sent to {to}; the server said: {answer}");
        }
        NotifyCommand::DailySummary => {
            if settings.mail.host.is_none() {
                anyhow::bail!(
                    "mail is not configured: set [mail] host (or COSTBRIDGE__MAIL__HOST)"
                );
            }
            let db = settings.database().await?;
            db.migrate().await?;
            let queued =
                crate::mail::queue_daily_summary(&db, &settings.mail, costbridge_storage::now())
                    .await?;
            // A fresh clock: the summaries just queued are due from the moment they were written.
            let report =
                crate::mail::deliver_pending(&db, &settings.mail, costbridge_storage::now())
                    .await?;
            println!(
                "{}",
                serde_json::json!({"queued": queued, "delivery": report})
            );
            db.close().await;
        }
    }
    Ok(())
}

async fn rotate(settings: &Settings, new_key_file: &std::path::Path) -> anyhow::Result<()> {
    let db = settings.database().await?;
    db.migrate().await?;
    let old = secrets::cipher(settings, &db).await?;
    let new = if new_key_file.exists() {
        Cipher::from_file(new_key_file)?
    } else {
        let c = Cipher::create_file(new_key_file)?;
        eprintln!("created the key file {}", new_key_file.display());
        c
    };
    let n = secrets::rotate(&db, &old, &new).await?;
    db.close().await;
    eprintln!(
        "{n} connection(s) re-encrypted from key {} to key {}; set [secrets] key_file = \"{}\" \
         (or COSTBRIDGE__SECRETS__KEY) and restart every instance: the old key is no longer needed",
        old.id(),
        new.id(),
        new_key_file.display()
    );
    Ok(())
}

async fn serve(mut settings: Settings, args: ServeArgs) -> anyhow::Result<()> {
    if let Some(listen) = args.listen {
        settings.server.listen = listen;
    }
    if args.demo && !settings.outbound.allow_private {
        // The demo ERP (scripts/demo-erp) runs on this machine, which the default policy refuses.
        settings.outbound.allow_private = true;
        println!(
            "Demo: connectors may reach internal addresses ([outbound] allow_private = true)."
        );
    }
    let app = App::build(settings).await?;
    if args.demo
        && let Some(logins) = demo::seed(&app.state).await?
    {
        println!(
            "Demo company created. Open http://{} and sign in, or use the API tokens:",
            app.addr
        );
        for l in logins {
            println!(
                "  {:<24} password {}   token {}",
                l.email, l.password, l.token
            );
        }
    }
    println!("costbridge listening on http://{}", app.addr);
    // After `--demo` seeded its company there is nothing to set up.
    if let Some(code) = &app.state.first_run.code
        && app.state.db.companies_count().await? == 0
    {
        tracing::warn!(setup_code = %code,
            "the database is empty: open Costbridge in a browser and enter this setup code to set up the first company");
        println!("No company yet: open it in a browser and enter the setup code {code}");
    }
    let (shutdown, again) = crate::app::signals();
    app.run(shutdown, again).await
}

/// The first admin's password from standard input (piped, or typed at the prompt), without
/// its line break.
fn first_line_of_stdin(email: &str) -> anyhow::Result<String> {
    use std::io::IsTerminal;
    // Typed at a terminal, it is not echoed (`stty`, which every Unix has): shown, it stayed on
    // the screen and in the terminal's scrollback.
    fn stty(mode: &str) -> bool {
        std::process::Command::new("stty")
            .arg(mode)
            .stdin(std::process::Stdio::inherit())
            .status()
            .is_ok_and(|s| s.success())
    }
    // Ctrl-C at the prompt gives the terminal its echo back before the process ends: it was
    // left silent. Listened to before echo goes off, so no Ctrl-C comes between.
    #[cfg(unix)]
    let interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt());
    let hidden = std::io::stdin().is_terminal() && stty("-echo");
    #[cfg(unix)]
    if hidden && let Ok(mut interrupt) = interrupt {
        tokio::spawn(async move {
            interrupt.recv().await;
            stty("echo");
            eprintln!();
            std::process::exit(130);
        });
    }
    if hidden {
        eprint!("password for {email} (not shown as you type it): ");
    } else if std::io::stdin().is_terminal() {
        eprint!("password for {email} (shown as you type it; pipe it in to avoid that): ");
    }
    let mut line = String::new();
    let read = std::io::stdin().read_line(&mut line);
    if hidden {
        stty("echo");
        eprintln!();
    }
    read?;
    let password = line.trim_end_matches(['\r', '\n']);
    anyhow::ensure!(
        !password.is_empty(),
        "no password: give it on standard input, in COSTBRIDGE_BOOTSTRAP_PASSWORD or with --password"
    );
    Ok(password.to_owned())
}

async fn bootstrap(
    settings: &Settings, company: &str, email: &str, password: &str, name: &str,
) -> anyhow::Result<()> {
    // The setup page's checks, so a name the pages and the API refuse (a line break that would
    // reach email subjects) is refused here too; each problem names its flag.
    let flags = |f: ops::Fields| {
        anyhow::anyhow!(
            "{}",
            f.into_iter()
                .map(|(k, v)| format!("--{k}: {}", v.join("; ")))
                .collect::<Vec<_>>()
                .join("\n")
        )
    };
    let (company, name, email) = ops::users::check_founding(company, name, email, password)
        .map_err(|e| match e {
            ops::OpError::Invalid(f) => flags(f),
            other => anyhow::anyhow!("{other}"),
        })?;
    let db = settings.database().await?;
    db.migrate().await?;
    let hash = password::hash_blocking(password)?;
    let user = NewUser {
        email: &email,
        name: &name,
        password_hash: &hash,
        permissions: Permissions::FULL,
    };
    let (company_id, user_id) = db
        .create_company(&company, &user)
        .await
        .map_err(|e| match e {
            costbridge_storage::StoreError::Invalid(f) => flags(f),
            other => other.into(),
        })?;
    let token = password::new_token();
    db.insert_token(user_id, &password::hash_token(&token), None)
        .await?;
    println!(
        "{}",
        serde_json::json!({"company_id": company_id, "user_id": user_id, "token": token})
    );
    Ok(())
}

/// The CLI acts as the company's first admin, so its changes are attributed in the audit log.
async fn cli_state(settings: &Settings, company: i64) -> anyhow::Result<(AppState, User)> {
    let db = settings.database().await?;
    db.migrate().await?;
    let actor = db
        .users(company)
        .await?
        .into_iter()
        .find(|u| u.permissions.can_write_codes())
        .ok_or_else(|| {
            anyhow::anyhow!("company {company} does not exist or has no Admin-tool admin")
        })?;
    let cipher = std::sync::Arc::new(secrets::cipher(settings, &db).await?);
    let state = AppState {
        connectors: settings.connectors(&db, &cipher)?,
        db,
        worker_wake: Default::default(),
        metrics: Default::default(),
        sign_in: Default::default(),
        base_url: settings.mail.base_url.as_str().into(),
        mail_on: settings.mail.host.is_some(),
        cipher,
        first_run: Default::default(),
        unsynced_checks: Default::default(),
        zones: Default::default(),
        names: Default::default(),
        rates: Default::default(),
        gl_accounts: Default::default(),
        api: settings.api.clone(),
    };
    Ok((state, actor))
}

async fn import(settings: &Settings, args: ListArgs) -> anyhow::Result<()> {
    let path = args
        .file
        .ok_or_else(|| anyhow::anyhow!("--file is required for import"))?;
    let bytes =
        std::fs::read(&path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let (state, actor) = cli_state(settings, args.company).await?;
    // Hidden when not a terminal, so scripts and CI logs stay clean.
    let bar = ProgressBar::new(bytes.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{msg} {bar:40} {bytes}/{total_bytes}")
            .expect("static template"),
    );
    bar.set_message("reading");
    let result = imports::import(&state, &actor, args.company, args.list, &bytes, |pos| {
        bar.set_position(pos)
    })
    .await;
    bar.finish_and_clear();
    match result {
        Ok(s) => {
            println!("{}", serde_json::to_string(&s)?);
            Ok(())
        }
        Err(e) => {
            // The API's error body, so scripts read one shape.
            let e = ApiError::from(e);
            eprintln!(
                "{}",
                serde_json::to_string_pretty(
                    &serde_json::json!({"error": {"message": e.message, "details": e.details}})
                )?
            );
            anyhow::bail!("nothing was imported")
        }
    }
}

async fn export(settings: &Settings, args: ListArgs) -> anyhow::Result<()> {
    let (state, _) = cli_state(settings, args.company).await?;
    let codes = state.db.export_codes(args.company, args.list).await?;
    let text = crate::csvio::render(&codes);
    match args.file {
        Some(path) => {
            std::fs::write(&path, text)?;
            eprintln!("{} codes written to {}", codes.len(), path.display());
        }
        None => print!("{text}"),
    }
    Ok(())
}

/// The variable through which glibc's malloc takes its cap on arenas.
const ARENA_MAX: &str = "MALLOC_ARENA_MAX";

/// Caps glibc's malloc at two arenas per core on SQLite, unless the operator set a cap. By
/// default each thread that allocates (the runtime's, and each SQLite connection's own) may get
/// an arena of its own, up to eight per core, and every arena keeps the memory freed in it: a
/// 100,000-code export on SQLite peaked at 128–153 MB resident, against 109–129 MB with four
/// arenas on two cores (one per core, 99–104 MB, slowed the pages: threads waited on each
/// other's arena). PostgreSQL's connections have no threads of their own: its peak stayed at
/// 98–100 MB either way, so it keeps glibc's default (BENCHMARKS.md, session 14).
///
/// glibc reads the cap from the environment once, when the process starts, and setting it from
/// inside (`mallopt`) would need `unsafe`. So the process becomes itself again with the cap in
/// its environment, before it opens anything: the same process id, arguments and environment
/// otherwise.
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
    tracing::warn!(%error, "could not restart with {ARENA_MAX} set; running with glibc's default arenas");
}
