use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};
use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;
use time::OffsetDateTime;

use crate::held::Held;
use crate::tx::{Body, Queries, Record, Tx};

/// The database, embedded SQLite by default or a shared PostgreSQL for several instances.
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// What this process keeps for each SQLite file it writes to.
#[derive(Debug)]
pub(crate) struct SqliteFile {
    /// The turn of this process's writers. SQLite lets one writer in at a time and makes the
    /// others poll with growing sleeps (up to 100 ms each), so under load a writer could wait
    /// ten times longer than the queue ahead of it; queueing them here first, in order, keeps
    /// a write's wait close to the work ahead of it.
    pub writer: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// Held by the task of [`SqliteFile::checkpoint_if_due`] while it copies the WAL: one at a
    /// time.
    checkpoint: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// The file's write-ahead log.
    wal: std::path::PathBuf,
}

/// The [`SqliteFile`] of `pool`'s database, the same for every pool on it.
pub(crate) fn sqlite_file(pool: &sqlx::SqlitePool) -> std::sync::Arc<SqliteFile> {
    static FILES: std::sync::LazyLock<
        std::sync::Mutex<std::collections::HashMap<std::path::PathBuf, std::sync::Arc<SqliteFile>>>,
    > = std::sync::LazyLock::new(Default::default);
    let file = pool.connect_options().get_filename().to_path_buf();
    let mut files = FILES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    files
        .entry(file.clone())
        .or_insert_with(|| {
            let mut wal = file.into_os_string();
            wal.push("-wal");
            std::sync::Arc::new(SqliteFile {
                writer: Default::default(),
                checkpoint: Default::default(),
                wal: wal.into(),
            })
        })
        .clone()
}

/// How far a SQLite WAL grows before a write has it copied into the database file: SQLite's
/// own default (1,000 pages of 4 KiB). `journal_size_limit` shrinks the WAL back to it once
/// copied, so its size on disk tells whether there is something to copy.
const CHECKPOINT_FROM: u64 = 4 * 1024 * 1024;

/// SQLite's own checkpoint, left only as a backstop for writes made outside [`Db::write`]
/// (which checkpoints through [`SqliteFile::checkpoint_if_due`]): 65,536 pages, 256 MiB.
const AUTO_CHECKPOINT_PAGES: &str = "65536";

impl SqliteFile {
    /// After a commit: when the WAL has grown past [`CHECKPOINT_FROM`], copies it into the
    /// database file on a task of its own. SQLite's automatic checkpoint ran inside the commit
    /// that crossed the mark, so the request whose commit filled the WAL (a 100,000-code
    /// import or Send to ERP writes tens of MiB) waited for the copy and its fsync: a sixth of
    /// such an import's time and a fifth of such a send's (BENCHMARKS.md). Passive, it waits
    /// for no reader or writer; what a reader still needs is copied by a later one.
    fn checkpoint_if_due(&self, pool: &sqlx::SqlitePool) {
        if std::fs::metadata(&self.wal).map_or(true, |m| m.len() <= CHECKPOINT_FROM) {
            return;
        }
        // Released however the task ends (a runtime shut down drops it unrun).
        let Ok(turn) = self.checkpoint.clone().try_lock_owned() else {
            return;
        };
        let pool = pool.clone();
        tokio::spawn(async move {
            match sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&pool)
                .await
            {
                // A server stopping closes its pool: the last connection's close checkpoints.
                Ok(_) | Err(sqlx::Error::PoolClosed) => {}
                Err(e) => tracing::warn!(error = %e, "the SQLite WAL was not checkpointed"),
            }
            drop(turn);
        });
    }
}

/// How often a transaction runs before a deadlock or serialization failure reaches the caller.
pub(crate) const TX_ATTEMPTS: u32 = 5;

/// Errors the database raises to break a lock cycle or a serialization conflict: the
/// transaction was rolled back and running it again is safe.
pub(crate) trait Transient {
    fn is_transient(&self) -> bool;
}

impl Transient for sqlx::Error {
    fn is_transient(&self) -> bool {
        match self {
            // 40001 serialization_failure, 40P01 deadlock_detected (PostgreSQL); 5 and 517
            // SQLITE_BUSY(_SNAPSHOT), should the busy timeout ever run out.
            sqlx::Error::Database(e) => {
                matches!(e.code().as_deref(), Some("40001" | "40P01" | "5" | "517"))
            }
            _ => false,
        }
    }
}

impl Transient for StoreError {
    fn is_transient(&self) -> bool {
        matches!(self, StoreError::Db(e) if e.is_transient())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// Field-level problems: `{field: [messages]}`.
    #[error("validation failed")]
    Invalid(BTreeMap<String, Vec<String>>),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Locked(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        StoreError::Invalid(BTreeMap::from([(field.to_owned(), vec![message.into()])]))
    }

    /// A stored value this version cannot read (an unknown state): the row is not guessed at.
    pub fn decode(e: costbridge_domain::queue::UnknownState) -> StoreError {
        StoreError::Db(sqlx::Error::Decode(Box::new(e)))
    }

    pub fn is_unique_violation(&self) -> bool {
        matches!(self, StoreError::Db(sqlx::Error::Database(e)) if e.is_unique_violation())
    }

    /// A unique violation becomes `taken()`, the error a user can act on; others stay as they are.
    pub(crate) fn unique_as(self, taken: impl FnOnce() -> StoreError) -> StoreError {
        if self.is_unique_violation() {
            taken()
        } else {
            self
        }
    }
}

/// Now, in UTC, truncated to microseconds so SQLite and PostgreSQL store the same instant.
pub fn now() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc();
    t.replace_nanosecond(t.nanosecond() / 1000 * 1000)
        .unwrap_or(t)
}

/// A row queue claimed with a lease (export jobs, outbox emails): the oldest due row is
/// updated by `set` (which must set `locked_until = $1`) and returned as `returning`; `due`
/// may use `$2`, the claim's time.
pub(crate) struct Lease<'a> {
    pub table: &'a str,
    pub set: &'a str,
    pub due: &'a str,
    pub order: &'a str,
    pub returning: &'a str,
}

impl Db {
    /// Runs `body` in a write transaction, committing when it returns `Ok` and rolling back
    /// when it returns an error: `db.write(|tx| Box::pin(async move { … }))` (docs/storage.md).
    /// SQLite takes the write lock up front (`BEGIN IMMEDIATE`, after this process's
    /// [`SqliteFile::writer`] turn) so two writers queue instead of failing when the reader in a
    /// deferred transaction upgrades.
    ///
    /// Every transaction takes its row locks in one order, so two of them never wait on each
    /// other in a circle: the list row (`cost_code_lists`, which also serialises writers of one
    /// list), then `cost_codes`, then `erp_items`, then `export_jobs`, then the append-only
    /// tables (`submissions`, `audit_events`, `outbox`, `event_outbox`), and last the request's
    /// own `idempotency_keys` row ([`crate::requests::mark_changed`]). (The export worker's
    /// outcomes update items before codes, after the list row: the rows they touch, exporting
    /// in their job, are touched by nothing else.) A change of a user's rights or password takes
    /// the company's row (`FOR NO KEY UPDATE`: inserts that only reference the company go on),
    /// then the user's, then whoever chose their password or holds a client's secret
    /// (`FOR SHARE`). Should PostgreSQL still report a
    /// deadlock or a serialization failure, `body` runs again (the transaction was rolled back
    /// first), up to [`TX_ATTEMPTS`] times, so a user never sees one.
    ///
    /// Why a boxed future and not an async closure (`AsyncFnMut`): the compiler cannot yet prove
    /// an async closure's future `Send` when it borrows the caller's data, and axum handlers and
    /// the worker need `Send`.
    pub(crate) async fn write<'c, T, E>(
        &self, mut body: impl for<'t> FnMut(&'t mut Tx<'c>) -> Body<'t, T, E>,
    ) -> Result<T, E>
    where
        E: From<StoreError> + Transient + std::fmt::Debug,
    {
        let mut attempt = 1;
        loop {
            match self.write_once(&mut body).await {
                Err(e) if attempt < TX_ATTEMPTS && e.is_transient() => {
                    tracing::warn!(
                        attempt,
                        error = ?e,
                        "transaction rolled back by the database; running it again"
                    );
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn write_once<'c, T, E>(
        &self, body: &mut impl for<'t> FnMut(&'t mut Tx<'c>) -> Body<'t, T, E>,
    ) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let file = match self {
            Db::Sqlite(p) => Some(sqlite_file(p)),
            Db::Postgres(_) => None,
        };
        // The turn is taken first so it is released last, after a failed body's rollback.
        let _turn = match &file {
            Some(f) => Some(f.writer.clone().lock_owned().await),
            None => None,
        };
        let mut tx: Tx<'c> = match self {
            Db::Sqlite(p) => Tx::Sqlite(
                p.begin_with("BEGIN IMMEDIATE")
                    .await
                    .map_err(StoreError::from)?,
                Held::default(),
            ),
            Db::Postgres(p) => Tx::Postgres(p.begin().await.map_err(StoreError::from)?),
        };
        let out = body(&mut tx).await?;
        crate::requests::mark_changed(&mut tx).await?;
        tx.commit().await?;
        if let (Some(file), Db::Sqlite(p)) = (&file, self) {
            file.checkpoint_if_due(p);
        }
        Ok(out)
    }

    /// A transaction that only reads, all of it from one snapshot (`REPEATABLE READ` on
    /// PostgreSQL; on SQLite, a deferred transaction reads one snapshot of the WAL), and
    /// blocks no writer: for reads that compare tables with each other on a live database.
    /// Dropped, it ends.
    pub(crate) async fn snapshot(&self) -> Result<Tx<'static>, StoreError> {
        Ok(match self {
            Db::Sqlite(p) => Tx::Sqlite(p.begin_with("BEGIN").await?, Held::default()),
            Db::Postgres(p) => Tx::Postgres(
                p.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await?,
            ),
        })
    }
}

impl Db {
    /// Takes the next due row of a leased queue for `lease`, or `None` when nothing is due.
    pub(crate) async fn claim<T: Record>(
        &self, q: &Lease<'_>, at: OffsetDateTime, lease: time::Duration,
    ) -> Result<Option<T>, StoreError> {
        // SKIP LOCKED lets several PostgreSQL instances claim different rows without waiting
        // on each other; under SQLite's single writer the one statement is already atomic.
        let skip_locked = match self {
            Db::Postgres(_) => " FOR UPDATE SKIP LOCKED",
            Db::Sqlite(_) => "",
        };
        let sql = format!(
            "UPDATE {t} SET {set} WHERE id = (SELECT id FROM {t} WHERE \
             {due} ORDER BY {order} LIMIT 1{skip_locked}) RETURNING {ret}",
            t = q.table,
            set = q.set,
            due = q.due,
            order = q.order,
            ret = q.returning
        );
        self.pool()
            .fetch_optional(sqlx::AssertSqlSafe(sql), [(at + lease).into(), at.into()])
            .await
    }

    /// Opens `sqlite://path` (created if missing) or `postgres://…`.
    pub async fn connect(url: &str) -> Result<Db, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            // JIT compilation pays off for long analytic queries, not for these short ones.
            let mut opts = PgConnectOptions::from_str(url)?.options([("jit", "off")]);
            // The same promise as SQLite's WAL + NORMAL: a commit survives Costbridge being
            // killed (PostgreSQL has it), and the server's own crash or a power loss can lose
            // only the last fraction of a second, never consistency. Waiting for the WAL fsync
            // on every commit cost 20-60 ms per write on this VM, paid in turn by every writer
            // queued on a list's lock. `?options=-c synchronous_commit=on` in the URL keeps it.
            if !url.contains("synchronous_commit") {
                opts = opts.options([("synchronous_commit", "off")]);
            }
            // TLS to a server on this same machine protects nothing (the bytes never leave
            // it), and sqlx's sockets keep Nagle's algorithm on: each TLS handshake stalled
            // twice on delayed ACKs, ~90 ms a connection, two of them in start-up (215 ms of
            // which 190 were handshakes). A loopback host without `sslmode` in the URL goes in
            // plain; any other host keeps sqlx's default (TLS when the server offers it).
            if !url.contains("sslmode") && is_loopback(opts.get_host()) {
                opts = opts.ssl_mode(PgSslMode::Disable);
            }
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(opts)
                .await?;
            Ok(Db::Postgres(pool))
        } else {
            let opts = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // WAL + NORMAL is durable across a process crash (what we promise); FULL would
                // add an fsync per commit for power loss, set it in the URL if you need it.
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(30))
                .pragma("wal_autocheckpoint", AUTO_CHECKPOINT_PAGES)
                .pragma("journal_size_limit", CHECKPOINT_FROM.to_string());
            // sqlx pings an idle connection before lending it out, by default: on SQLite a
            // round trip to the connection's own thread before every statement, to check a
            // link that cannot drop (the file is local). Two back-to-back bench pairs showed
            // no difference beyond the spread (BENCHMARKS.md); it is skipped as needless work.
            let pool = SqlitePoolOptions::new()
                .max_connections(8)
                .test_before_acquire(false)
                .connect_with(opts)
                .await?;
            Ok(Db::Sqlite(pool))
        }
    }

    /// Brings the schema up to this version's. A database a newer version upgraded is refused
    /// in words: sqlx's "migration … was previously applied but is missing in the resolved
    /// migrations" did not say that the database is newer than the binary, nor what to do.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let ran = match self {
            Db::Sqlite(p) => sqlx::migrate!("./migrations/sqlite").run(p).await,
            Db::Postgres(p) => sqlx::migrate!("./migrations/postgres").run(p).await,
        };
        match ran {
            Err(sqlx::migrate::MigrateError::VersionMissing(v)) => {
                Err(StoreError::Conflict(format!(
                    "this database was upgraded by a newer Costbridge (it has migration {v}, \
                     which this version does not know): run that version or a newer one, or \
                     restore the backup taken before the upgrade"
                )))
            }
            other => Ok(other?),
        }
    }

    /// Which database this is, to tell databases apart in what this process keeps in memory
    /// about them: the file for SQLite, the server and database for PostgreSQL.
    pub(crate) fn identity(&self) -> String {
        match self {
            Db::Sqlite(p) => p.connect_options().get_filename().display().to_string(),
            Db::Postgres(p) => {
                let o = p.connect_options();
                format!(
                    "{}:{}/{}",
                    o.get_host(),
                    o.get_port(),
                    o.get_database().unwrap_or_default()
                )
            }
        }
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        self.pool().execute("SELECT 1", []).await?;
        Ok(())
    }

    /// PostgreSQL plans from table statistics that autovacuum refreshes only some time later;
    /// right after a bulk change the stale numbers make it choose plans fit for a tiny table
    /// (measured: accepting 100,000 codes took 62 s instead of a few). Refresh them at once,
    /// for the columns that statements filter, join or order on: the texts only shown or sent
    /// (descriptions, confirmed and previous values) made a whole-table `ANALYZE` of 100,000
    /// codes and items take 305 ms instead of 134, on the request's path (BENCHMARKS.md). A
    /// new condition on another column adds that column here.
    ///
    /// It runs after the change committed, so it cannot fail the change: an error here made a
    /// committed send or import answer 500, and a client's retry with its `Idempotency-Key`
    /// ran it again. A failure is logged; the next bulk step of 1,000 rows or more on
    /// PostgreSQL (or autovacuum, where it runs) refreshes them.
    pub(crate) async fn refresh_stats(&self, rows: usize) {
        if let Db::Postgres(p) = self
            && rows >= 1000
            && let Err(e) = sqlx::query(
                "ANALYZE cost_codes (id, company_id, list_id, parent_id, sync_status, sort_key, \
                 full_code, changed_version), erp_items (id, company_id, status, superseded, \
                 export_job_id, submission_id, cost_code_id, sent_by, decided_by, sort_key, \
                 decided_at, gl_income_account)",
            )
            .execute(p)
            .await
        {
            tracing::warn!(error = %e, "statistics not refreshed after a bulk change");
        }
    }

    pub async fn close(&self) {
        match self {
            Db::Sqlite(p) => p.close().await,
            Db::Postgres(p) => p.close().await,
        }
    }
}

/// A PostgreSQL host on this machine: `localhost`, a loopback address, or a Unix socket folder.
fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host.starts_with('/')
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    /// Only a host on this machine goes without TLS by default.
    #[test]
    fn loopback_hosts_are_this_machine_only() {
        for host in [
            "localhost",
            "127.0.0.1",
            "127.1.2.3",
            "::1",
            "[::1]",
            "/run/postgresql",
        ] {
            assert!(super::is_loopback(host), "{host}");
        }
        for host in [
            "db.example.com",
            "10.0.0.5",
            "localhost.example.com",
            "::ffff:10.0.0.5",
        ] {
            assert!(!super::is_loopback(host), "{host}");
        }
    }

    /// Each SQLite migration has a PostgreSQL twin with the same number and name, and both
    /// create the same tables and columns.
    #[test]
    fn migrations_pair_up() {
        let names = |dir: &str| {
            let mut v: Vec<String> =
                std::fs::read_dir(format!("{}/migrations/{dir}", env!("CARGO_MANIFEST_DIR")))
                    .expect("migrations folder")
                    .map(|e| {
                        e.expect("entry")
                            .file_name()
                            .into_string()
                            .expect("utf-8 name")
                    })
                    .collect();
            v.sort();
            v
        };
        let (lite, pg) = (names("sqlite"), names("postgres"));
        assert!(!lite.is_empty());
        assert_eq!(lite, pg);
        let columns = |dir: &str, file: &str| -> Vec<String> {
            std::fs::read_to_string(format!(
                "{}/migrations/{dir}/{file}",
                env!("CARGO_MANIFEST_DIR")
            ))
            .expect("migration")
            .lines()
            .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
            .filter(|w| w.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
            .collect()
        };
        for f in &lite {
            assert_eq!(columns("sqlite", f), columns("postgres", f), "{f}");
        }
    }

    /// A write that grows SQLite's WAL past [`super::CHECKPOINT_FROM`] has it copied into the
    /// database file after its commit, though SQLite's own checkpoint (the backstop) would wait
    /// for 256 MiB; the next write then starts the WAL over, back within the mark, so writes
    /// after it ask for no checkpoint.
    #[tokio::test]
    async fn a_write_that_fills_the_wal_has_it_checkpointed() {
        use crate::tx::Queries;
        let dir = std::env::temp_dir().join(format!("costbridge-wal-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("folder");
        let (file, wal) = (dir.join("cb.db"), dir.join("cb.db-wal"));
        let db = super::Db::connect(&format!("sqlite://{}", file.display()))
            .await
            .expect("open");
        let super::Db::Sqlite(pool) = &db else {
            unreachable!("a SQLite URL")
        };
        let size = |p: &std::path::Path| std::fs::metadata(p).map_or(0, |m| m.len());
        let bytes = 3 * super::CHECKPOINT_FROM;
        let fill = format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {}) \
             INSERT INTO filler SELECT randomblob(1000) FROM n",
            bytes / 1000
        );
        db.write(|tx| {
            let fill = fill.clone();
            Box::pin(async move {
                tx.execute("CREATE TABLE filler (b BLOB)", []).await?;
                tx.execute(sqlx::AssertSqlSafe(fill), []).await?;
                Ok::<_, super::StoreError>(())
            })
        })
        .await
        .expect("fill");
        assert!(size(&wal) > bytes, "the rows are in the WAL first");
        let done = tokio::time::timeout(Duration::from_secs(20), async {
            while super::sqlite_file(pool).checkpoint.try_lock().is_err() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        assert!(done.is_ok(), "the checkpoint did not end");
        assert!(size(&file) > bytes, "the WAL was not copied into the file");
        // A write after the copy starts the WAL over and cuts it back to the mark.
        db.write(|tx| {
            Box::pin(async move {
                tx.execute("DELETE FROM filler WHERE rowid = 1", []).await?;
                Ok::<_, super::StoreError>(())
            })
        })
        .await
        .expect("small write");
        assert!(
            size(&wal) <= super::CHECKPOINT_FROM,
            "WAL of {} bytes",
            size(&wal)
        );
        db.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The SQLite rows stored before times were written fixed width are rewritten to it, so
    /// they compare as times with the new ones; a time already fixed width stays as it is.
    #[tokio::test]
    async fn old_sqlite_times_are_rewritten_fixed_width() {
        let path = std::env::temp_dir().join(format!("costbridge-times-{}.db", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let db = super::Db::connect(&format!("sqlite://{}", path.display()))
            .await
            .expect("open");
        let super::Db::Sqlite(pool) = &db else {
            unreachable!("a SQLite URL")
        };
        let all = sqlx::migrate!("./migrations/sqlite");
        let rewrite = 202611313;
        assert!(
            all.iter().any(|m| m.version == rewrite),
            "the rewrite migration"
        );
        let mut before = sqlx::migrate!("./migrations/sqlite");
        before.migrations = all
            .iter()
            .filter(|m| m.version < rewrite)
            .cloned()
            .collect();
        before.run(pool).await.expect("earlier migrations");
        let stored = [
            "2026-11-30T21:06:03Z",
            "2026-11-30T21:06:03.12Z",
            "2026-11-30T21:06:03.123456Z",
            "2026-11-30T21:06:03.123456789Z",
        ];
        for (id, at) in stored.iter().enumerate() {
            sqlx::query("INSERT INTO companies (id, name, created_at) VALUES (?, ?, ?)")
                .bind(id as i64 + 1)
                .bind(format!("c{id}"))
                .bind(at)
                .execute(pool)
                .await
                .expect("insert");
        }
        all.run(pool).await.expect("the rewrite");
        let now: Vec<(String,)> = sqlx::query_as("SELECT created_at FROM companies ORDER BY id")
            .fetch_all(pool)
            .await
            .expect("read");
        let now: Vec<&str> = now.iter().map(|(t,)| t.as_str()).collect();
        assert_eq!(
            now,
            [
                "2026-11-30T21:06:03.000000Z",
                "2026-11-30T21:06:03.120000Z",
                "2026-11-30T21:06:03.123456Z",
                "2026-11-30T21:06:03.123456Z",
            ]
        );
        db.close().await;
        for end in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{end}", path.display()));
        }
    }
}
