//! The `costbridge` commands, run as a newcomer or a script would run them.
use costbridge_storage::Db;
use std::process::Command;

/// `costbridge bootstrap` of a company and its first admin on `db`.
fn bootstrap(db: &str, company: &str, email: &str, password: &str) -> std::process::Output {
    costbridge(&[
        "bootstrap",
        "--company",
        company,
        "--email",
        email,
        "--password",
        password,
        "--database-url",
        db,
    ])
}

/// Whether `password` is the first user's, in the database at `db`.
fn first_password_is(db: &str, password: &str) -> bool {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let db = Db::connect(db).await.unwrap();
        let hash = db.password_hash(1).await.unwrap();
        costbridge_server::password::verify(password.into(), hash).await
    })
}

/// What a command printed, as JSON; it must have succeeded.
fn printed_json(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn costbridge(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_costbridge"))
        .args(args)
        .output()
        .expect("run costbridge")
}

/// The first admin's password and the database's need not be on a command line (where `ps`
/// and the shell's history keep them), and `--help` does not print them from the environment.
#[test]
fn passwords_stay_off_the_command_line_and_out_of_help() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("stdin.db").display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_costbridge"))
        .args([
            "bootstrap",
            "--company",
            "Piped Co",
            "--email",
            "p@example.com",
        ])
        .args(["--database-url", &db])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"piped-password-1\n").unwrap();
    drop(stdin);
    let ids = printed_json(&child.wait_with_output().unwrap());
    assert_eq!(ids["user_id"].as_i64(), Some(1));
    assert!(
        first_password_is(&db, "piped-password-1"),
        "the piped password is the admin's"
    );

    let help = Command::new(env!("CARGO_BIN_EXE_costbridge"))
        .args(["serve", "--help"])
        .env(
            "COSTBRIDGE_DATABASE_URL",
            "postgres://cb:db-secret-pw@db/costs",
        )
        .env("COSTBRIDGE_BOOTSTRAP_PASSWORD", "boot-secret-pw")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("COSTBRIDGE_DATABASE_URL"), "{text}");
    assert!(!text.contains("db-secret-pw"), "{text}");
    let help = Command::new(env!("CARGO_BIN_EXE_costbridge"))
        .args(["bootstrap", "--help"])
        .env("COSTBRIDGE_BOOTSTRAP_PASSWORD", "boot-secret-pw")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(!text.contains("boot-secret-pw"), "{text}");
}

/// Typed at a terminal, the first admin's password is not echoed: it stayed on the screen and
/// in the scrollback. Ctrl-C at the prompt gives the terminal its echo back (it was left
/// silent). Driven through a real pseudo-terminal (Python's `pty`).
#[test]
fn a_password_typed_at_a_terminal_is_not_shown() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("tty.db").display());
    // Types `argv[3]` at the prompt; prints what the terminal showed, then whether it echoes.
    let driver = r#"
import os, pty, signal, sys, termios
signal.alarm(30)
binary, db, typed = sys.argv[1], sys.argv[2], sys.argv[3].encode()
pid, fd = pty.fork()
if pid == 0:
    os.execv(binary, [binary, "bootstrap", "--company", "Tty Co", "--email", "t@example.com",
                      "--database-url", db])
seen = b""
while b"password for" not in seen:
    seen += os.read(fd, 1024)
os.write(fd, typed)
while True:
    try:
        chunk = os.read(fd, 1024)
    except OSError:
        break
    if not chunk:
        break
    seen += chunk
_, status = os.waitpid(pid, 0)
echoes = termios.tcgetattr(fd)[3] & termios.ECHO != 0
sys.stdout.buffer.write(seen + b"\necho " + str(echoes).encode())
sys.exit(os.waitstatus_to_exitcode(status))
"#;
    let at_terminal = |typed: &str| {
        let out = Command::new("python3")
            .args(["-c", driver, env!("CARGO_BIN_EXE_costbridge"), &db, typed])
            .output()
            .expect("python3 runs the terminal (scripts/setup installs it)");
        let screen = String::from_utf8_lossy(&out.stdout).into_owned();
        (out.status.code(), screen)
    };
    let (status, screen) = at_terminal("\u{3}");
    assert_eq!(status, Some(130), "{screen}");
    assert!(
        screen.ends_with("echo True"),
        "Ctrl-C left the terminal silent: {screen}"
    );
    let (status, screen) = at_terminal("typed-password-1\n");
    assert_eq!(status, Some(0), "{screen}");
    assert!(screen.contains("not shown as you type it"), "{screen}");
    assert!(!screen.contains("typed-password-1"), "{screen}");
    assert!(screen.ends_with("echo True"), "{screen}");
    assert!(
        first_password_is(&db, "typed-password-1"),
        "the typed password is the admin's"
    );
}

/// An older binary on a database a newer one upgraded says so, and what to do; sqlx's own
/// "previously applied but is missing" did not.
#[test]
fn a_database_from_a_newer_version_is_refused_in_words() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("newer.db").display());
    let migrate = || costbridge(&["migrate", "--database-url", &db]);
    assert!(migrate().status.success());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let Db::Sqlite(p) = Db::connect(&db).await.unwrap() else {
            unreachable!("a SQLite URL")
        };
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, \
             execution_time) VALUES (209912310, 'from the future', TRUE, x'00', 0)",
        )
        .execute(&p)
        .await
        .unwrap();
    });
    let out = migrate();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains(
            "this database was upgraded by a newer Costbridge (it has migration 209912310"
        ) && said.contains("restore the backup"),
        "{said}"
    );
}

#[test]
fn bootstrap_import_export_and_config() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("cli.db").display());
    let out = bootstrap(&db, "Cli Co", "cli@example.com", "cli-password-1");
    let ids = printed_json(&out);
    assert_eq!(
        (ids["company_id"].as_i64(), ids["user_id"].as_i64()),
        (Some(1), Some(1))
    );
    assert!(ids["token"].as_str().unwrap().starts_with("cb_"));
    let again = bootstrap(&db, "Cli Co", "other@example.com", "cli-password-1");
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already exists"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    // A list to import into, made over the API of the same database.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let list = rt.block_on(async {
        let db = costbridge_storage::Db::connect(&db).await.unwrap();
        db.create_list(1, 1, "Estimating").await.unwrap().id
    });
    let csv = dir.path().join("codes.csv");
    std::fs::write(
        &csv,
        "full_code,description,active\n01,General,true\n01-100,Fees,true\n",
    )
    .unwrap();
    let (company, list) = ("1".to_owned(), list.to_string());
    let import = || {
        costbridge(&[
            "import",
            "--company",
            &company,
            "--list",
            &list,
            "--file",
            csv.to_str().unwrap(),
            "--database-url",
            &db,
        ])
    };
    let out = import();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        r#"{"created":2,"updated":0,"unchanged":0}"#
    );
    std::fs::write(&csv, "full_code,description,active\n02-100,Orphan,true\n").unwrap();
    let out = import();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("parent '02' is neither in the file nor in the list")
    );
    let out = costbridge(&[
        "export",
        "--company",
        &company,
        "--list",
        &list,
        "--database-url",
        &db,
    ]);
    // No BOM: a script reads this (the pages' download has one, for Excel).
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "full_code,description,active\n01,General,true\n01-100,Fees,true\n"
    );

    let out = costbridge(&["default-config"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("[worker]"));
    let out = costbridge(&["migrate", "--database-url", &db]);
    assert!(out.status.success());
}

/// `costbridge serve` on a fresh SQLite file in `dir`, with `env` added to its environment:
/// the child, its output's lines as they come (stdout and stderr), and the address it printed.
fn serve(
    dir: &std::path::Path, env: &[(&str, &str)], args: &[&str],
) -> (
    std::process::Child,
    std::sync::mpsc::Receiver<String>,
    String,
) {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let db = format!("sqlite://{}", dir.join("serve.db").display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_costbridge"))
        .args(["serve", "--listen", "127.0.0.1:0", "--database-url", &db])
        .args(args)
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start costbridge");
    // The address is printed on stdout, the log goes to stderr: read both as they come.
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let streams: [Box<dyn std::io::Read + Send>; 2] = [
        Box::new(child.stdout.take().expect("stdout")),
        Box::new(child.stderr.take().expect("stderr")),
    ];
    for stream in streams {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    let base = loop {
        if let Some(addr) = next(&rx, "address").strip_prefix("costbridge listening on ") {
            break addr.trim().to_owned();
        }
    };
    (child, rx, base)
}

/// On an empty database `serve` prints the setup code (and logs it), and only then: after
/// `--demo` seeded its company there is nothing to set up, and a code printed anyway sent
/// people to a setup page that was closed.
#[test]
fn the_setup_code_is_printed_only_when_there_is_something_to_set_up() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    for (args, printed) in [(&[][..], true), (&["--demo"][..], false)] {
        let dir = tempfile::tempdir().unwrap();
        let (mut child, rx, base) = serve(dir.path(), &[], args);
        // Answered, so whatever `serve` prints before it serves is out.
        let health = rt.block_on(async {
            reqwest::get(format!("{base}/healthz"))
                .await
                .unwrap()
                .status()
        });
        assert_eq!(health, reqwest::StatusCode::OK);
        let _ = child.kill();
        let _ = child.wait();
        // Every line, to the end of both streams.
        let lines: Vec<String> = rx.iter().collect();
        let told = lines.iter().any(|l| l.contains("enter the setup code"));
        let logged = lines.iter().any(|l| l.contains("setup_code"));
        assert_eq!((told, logged), (printed, printed), "{args:?}: {lines:#?}");
    }
}

/// The next line `serve`'s child printed, waiting at most 20 s.
fn next(rx: &std::sync::mpsc::Receiver<String>, what: &str) -> String {
    rx.recv_timeout(std::time::Duration::from_secs(20))
        .unwrap_or_else(|_| panic!("costbridge printed no {what} within 20 s"))
}

/// A stopping server gives open requests `shutdown_grace_seconds`, then stops without them; a
/// second signal stops it at once. One client sending its body slowly kept it running with no
/// end, past the service manager's patience, which then killed it without its last writes.
#[test]
fn a_slow_request_holds_a_stopping_server_only_so_long() {
    use std::io::Write;
    for (grace, second_signal) in [("1", false), ("600", true)] {
        let dir = tempfile::tempdir().unwrap();
        let db = format!("sqlite://{}", dir.path().join("serve.db").display());
        let admin = printed_json(&bootstrap(
            &db,
            "Slow Co",
            "s@example.com",
            "slow-password-1",
        ));
        let env = [("COSTBRIDGE__SERVER__SHUTDOWN_GRACE_SECONDS", grace)];
        let (mut child, rx, base) = serve(dir.path(), &env, &[]);
        // A connection the server serves (its first request answered), then a request on it
        // whose body never comes whole.
        let mut slow = std::net::TcpStream::connect(base.trim_start_matches("http://")).unwrap();
        slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut answer = [0u8; 12];
        std::io::Read::read_exact(&mut slow, &mut answer).unwrap();
        assert_eq!(&answer, b"HTTP/1.1 200");
        let head = format!(
            "POST /api/v1/companies/1/cost_code_lists HTTP/1.1\r\nHost: x\r\nAuthorization: \
             Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n\
             {{\"name\": ",
            admin["token"].as_str().unwrap()
        );
        slow.write_all(head.as_bytes()).unwrap();
        let term = |pid: u32| {
            let sent = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .unwrap();
            assert!(sent.success());
        };
        term(child.id());
        if second_signal {
            loop {
                if next(&rx, "the shutdown line").contains("shutting down") {
                    break;
                }
            }
            term(child.id());
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        let status =
            status.unwrap_or_else(|| panic!("still running 15 s after SIGTERM (grace {grace} s)"));
        assert!(status.success(), "{status}");
        drop(slow);
    }
}

/// At the default log level, every line a request logs carries its request id, so an operator
/// can follow one request (the id is echoed to the client in `x-request-id`).
#[test]
fn the_log_names_each_request() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, rx, base) = serve(dir.path(), &[], &[]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let echoed = rt.block_on(async {
        reqwest::Client::new()
            .get(format!("{base}/api/v1/companies/1/cost_code_lists"))
            .header("x-request-id", "probe-4242")
            .send()
            .await
            .unwrap()
            .headers()
            .get("x-request-id")
            .map(|v| v.to_str().unwrap().to_owned())
    });
    assert_eq!(echoed.as_deref(), Some("probe-4242"));
    let line = loop {
        let line = next(&rx, "line for the request");
        if line.contains("/api/v1/companies/1/cost_code_lists") {
            break line;
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(line.contains("probe-4242"), "{line}");
}

/// On SQLite the server caps glibc's malloc at two arenas per core (its peak memory depends on
/// it), in the process it was started as, and keeps a cap the operator set.
#[test]
fn the_server_caps_its_malloc_arenas_unless_told() {
    let cap = (2 * std::thread::available_parallelism().unwrap().get()).to_string();
    for (set, expected) in [(None, cap.as_str()), (Some("3"), "3")] {
        let dir = tempfile::tempdir().unwrap();
        let env: Vec<(&str, &str)> = set.map(|v| ("MALLOC_ARENA_MAX", v)).into_iter().collect();
        let (mut child, _rx, _) = serve(dir.path(), &env, &[]);
        // The process started is the one serving: its environment, read from the system.
        let environ = std::fs::read(format!("/proc/{}/environ", child.id())).unwrap();
        let _ = child.kill();
        let _ = child.wait();
        let caps: Vec<String> = environ
            .split(|b| *b == 0)
            .filter_map(|v| {
                String::from_utf8_lossy(v)
                    .strip_prefix("MALLOC_ARENA_MAX=")
                    .map(str::to_owned)
            })
            .collect();
        assert_eq!(caps, [expected], "operator's value: {set:?}");
    }
}

/// `costbridge check` passes on whole data and names the row when an invariant is broken.
#[test]
fn check_names_broken_invariants() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("check.db").display());
    let out = bootstrap(&db, "Check Co", "c@example.com", "check-password-1");
    assert!(out.status.success());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = costbridge_storage::Db::connect(&db).await.unwrap();
        let list = store.create_list(1, 1, "Estimating").await.unwrap().id;
        let code = costbridge_storage::codes::NewCode {
            code: costbridge_domain::wbs::CodeSegment::parse("01", '-').unwrap(),
            description: costbridge_domain::wbs::Description::parse("General").unwrap(),
            parent_id: None,
        };
        store.create_code(1, list, 1, code, '-').await.unwrap();
    });
    let ok = costbridge(&["check", "--database-url", &db]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let execute = |sql: &'static str| {
        rt.block_on(async {
            use sqlx::Connection;
            let mut c = sqlx::SqliteConnection::connect(&db).await.unwrap();
            sqlx::query(sql).execute(&mut c).await.unwrap();
        })
    };
    // A pending code with no queue item: what a concurrency bug of an earlier version left behind.
    execute("UPDATE cost_codes SET sync_status = 'pending'");
    let broken = costbridge(&["check", "--database-url", &db]);
    assert!(!broken.status.success());
    let said = String::from_utf8_lossy(&broken.stdout);
    assert!(
        said.contains("('01') is pending but its open queue item is missing"),
        "{said}"
    );
    // The state change above moved the list's maintained counts with it (the check found
    // nothing else); a count that drifted from the codes is named with its list and state.
    assert!(!said.contains(" counts "), "{said}");
    execute("UPDATE list_state_counts SET n = n + 2 WHERE sync_status = 'pending'");
    let drifted = costbridge(&["check", "--database-url", &db]);
    let said = String::from_utf8_lossy(&drifted.stdout);
    assert!(said.contains("counts 3 pending codes but has 1"), "{said}");
    // So is a drifted count of the queue's items.
    execute("INSERT INTO erp_item_counts (company_id, status, n) VALUES (1, 'ready', 2)");
    let drifted = costbridge(&["check", "--database-url", &db]);
    let said = String::from_utf8_lossy(&drifted.stdout);
    assert!(
        said.contains("company 1's queue counts 2 ready items but has 0"),
        "{said}"
    );
    // A row that names another company's person, which no foreign key catches (on PostgreSQL
    // the bulk tables keep none to users): the check names the row.
    let other = bootstrap(&db, "Other Co", "o@example.com", "check-password-2");
    assert!(other.status.success());
    let event: i64 = rt.block_on(async {
        use sqlx::Connection;
        let mut c = sqlx::SqliteConnection::connect(&db).await.unwrap();
        sqlx::query_scalar(
            "UPDATE audit_events SET actor_id = 2 WHERE id = (SELECT MIN(id) FROM audit_events \
             WHERE company_id = 1 AND actor_id = 1) RETURNING id",
        )
        .fetch_one(&mut c)
        .await
        .unwrap()
    });
    let crossed = costbridge(&["check", "--database-url", &db]);
    let said = String::from_utf8_lossy(&crossed.stdout);
    assert!(
        said.contains(&format!(
            "audit event {event} names an actor who is not a user of its company"
        )),
        "{said}"
    );
}

/// `bootstrap` refuses what the setup page and the API refuse: a line break in the company or
/// the person's name (it would reach email subjects), naming the flag; nothing is created.
#[test]
fn bootstrap_refuses_line_breaks_in_names() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("names.db").display());
    let boot = |company: &str, name: &str| {
        costbridge(&[
            "bootstrap",
            "--company",
            company,
            "--name",
            name,
            "--email",
            "n@example.com",
            "--password",
            "names-password-1",
            "--database-url",
            &db,
        ])
    };
    let out = boot("Acme\nBcc: x@evil.example", "Ann\rLee");
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("--company: contains a line break; replace it with a space"),
        "{said}"
    );
    assert!(
        said.contains("--name: contains a line break; replace it with a space"),
        "{said}"
    );
    let out = boot("Acme", "Ann Lee");
    let ids = printed_json(&out);
    assert_eq!(
        ids["company_id"], 1,
        "the refused bootstrap created nothing"
    );
}

/// `notify test` tells a server it never reached (naming host and port, and what to check)
/// from a server that answered and refused.
#[test]
fn notify_test_says_whether_it_connected() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let notify = |port: u16| {
        Command::new(env!("CARGO_BIN_EXE_costbridge"))
            .args(["notify", "test", "--to", "ops@one.example"])
            .env("COSTBRIDGE__MAIL__HOST", "127.0.0.1")
            .env("COSTBRIDGE__MAIL__PORT", port.to_string())
            .env("COSTBRIDGE__MAIL__TLS", "none")
            .env("COSTBRIDGE__MAIL__TIMEOUT_SECONDS", "5")
            .output()
            .expect("run costbridge")
    };
    // A port nobody listens on: bound, then let go.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = notify(closed);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains(&format!(
            "could not connect to the SMTP server at 127.0.0.1:{closed}"
        )),
        "{said}"
    );
    assert!(said.contains("Check that the mail server runs"), "{said}");
    assert!(!said.contains("refused the message"), "{said}");

    let smtp = rt.block_on(crate::smtp::SmtpServer::start());
    smtp.refuse(Some("550 5.7.1 Relaying denied"));
    let out = notify(smtp.port);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains(&format!(
            "the SMTP server at 127.0.0.1:{} refused the message",
            smtp.port
        )),
        "{said}"
    );
    assert!(said.contains("Relaying denied"), "{said}");
    assert!(!said.contains("could not connect"), "{said}");
}

/// A PostgreSQL on this machine is reached without TLS unless the URL asks for it (a handshake
/// stalled ~90 ms a connection and protected nothing); `sslmode` in the URL is obeyed.
#[tokio::test]
async fn a_local_postgres_goes_in_plain_unless_the_url_says() {
    let ssl = |url: String| async move {
        let Db::Postgres(pool) = Db::connect(&url).await.unwrap() else {
            panic!("{url} is not PostgreSQL");
        };
        let offered: String = sqlx::query_scalar("SHOW ssl")
            .fetch_one(&pool)
            .await
            .unwrap();
        let used: bool =
            sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                .fetch_one(&pool)
                .await
                .unwrap();
        (offered == "on", used)
    };
    let url = crate::helpers::pg_admin_url();
    assert!(
        url.contains("127.0.0.1") || url.contains("localhost"),
        "{url}"
    );
    let (_, plain) = ssl(url.clone()).await;
    assert!(!plain, "a loopback connection used TLS");
    let (offered, used) = ssl(format!("{url}?sslmode=prefer")).await;
    assert_eq!(used, offered, "sslmode=prefer in the URL was not obeyed");
}
