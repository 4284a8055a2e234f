//! Workflow benchmark at list scale: import, list, send and export N codes through the real
//! server, each against a floor measured in the same run on the same database.
//!
//!   cargo run --release --example bench -- [CODES] [sqlite|postgres]
//!
//! Floors: the same rows written with one plain multi-row INSERT per 500 (import), one
//! `INSERT … SELECT` copy of the list (send), the bare page query (list), and the IIF bytes
//! written straight to a file (export). PostgreSQL comes from COSTBRIDGE_TEST_PG.
use costbridge_domain::Permissions;
use costbridge_server::{App, Settings};
use costbridge_storage::Db;
use costbridge_storage::users::NewUser;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn report(what: &str, ours: Duration, floor: Duration) {
    println!(
        "| {what} | {:.0} ms | {:.0} ms | {:.2}× |",
        ms(ours),
        ms(floor),
        ours.as_secs_f64() / floor.as_secs_f64()
    );
}

macro_rules! on {
    ($db:expr, $p:ident => $body:expr) => {
        match $db {
            Db::Sqlite($p) => $body,
            Db::Postgres($p) => $body,
        }
    };
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args
        .get(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(100_000);
    let backend = args.get(2).cloned().unwrap_or_else(|| "sqlite".into());
    let dir = tempfile::tempdir()?;
    let mut settings = Settings::default();
    settings.server.listen = "127.0.0.1:0".into();
    settings.server.database_url = if backend == "postgres" {
        let admin = std::env::var("COSTBRIDGE_TEST_PG")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let db = Db::connect(&admin).await?;
        on!(&db, p => {
            sqlx::query("DROP DATABASE IF EXISTS costbridge_bench WITH (FORCE)").execute(p).await?;
            sqlx::query("CREATE DATABASE costbridge_bench").execute(p).await?;
        });
        format!(
            "{}/costbridge_bench",
            admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin)
        )
    } else {
        format!("sqlite://{}", dir.path().join("bench.db").display())
    };
    // PostgreSQL needs a key for connector secrets; this run stores none worth keeping.
    settings.secrets.key = Some("YmVuY2gta2V5LWJlbmNoLWtleS1iZW5jaC1rZXktISE=".into());
    settings.worker.enabled = false;
    let worker = settings.worker.clone();
    let app = App::build(settings).await?;
    let base = format!("http://{}", app.addr);
    let state = app.state.clone();
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run(async move {
        let _ = stopped.await;
    }));
    let hash = costbridge_server::password::hash_blocking("bench-password")?;
    let user = NewUser {
        email: "bench@example.com",
        name: "Bench",
        password_hash: &hash,
        permissions: Permissions::FULL,
    };
    let (company, uid) = state.db.create_company("Bench Co", &user).await?;
    let token = costbridge_server::password::new_token();
    state
        .db
        .insert_token(uid, &costbridge_server::password::hash_token(&token))
        .await?;
    let exports = dir.path().join("exports");
    let list = state
        .db
        .put_erp_connection(
            company,
            uid,
            "quickbooks_desktop",
            &json!({"kind": "file", "directory": exports, "format": "iif",
            "gl_accounts": [{"code": "4000", "name": "Construction Income", "kind": "income"}]}),
            &json!({}),
        )
        .await?
        .erp_list_id;
    let client = reqwest::Client::new();
    let url = |p: &str| format!("{base}/api/v1/companies/{company}{p}");

    // Three tiers: 40 divisions × 50 sections × the rest as items.
    let per_section = (n / 2000).max(1);
    let mut csv = String::from("full_code,description,active\n");
    let mut rows = Vec::with_capacity(n);
    'outer: for d in 1..=40 {
        rows.push((format!("{d:02}"), format!("Division {d}")));
        for s in 1..=50 {
            rows.push((
                format!("{d:02}-{s:03}"),
                format!("Section {s} of division {d}"),
            ));
            for i in 1..=per_section {
                if rows.len() >= n {
                    break 'outer;
                }
                rows.push((
                    format!("{d:02}-{s:03}-{i:04}"),
                    format!("Item {i}, section {s}, division {d}"),
                ));
            }
        }
    }
    // A division or section row can overshoot by one; the list is exactly `n` codes.
    rows.truncate(n);
    for (f, desc) in &rows {
        csv.push_str(&format!("{f},\"{desc}\",true\n"));
    }
    let n = rows.len();
    println!("{n} codes on {backend}\n\n| step | Costbridge | floor | ratio |\n|---|---|---|---|");

    let t = Instant::now();
    let res = client
        .post(url(&format!("/cost_code_lists/{list}/import")))
        .bearer_auth(&token)
        .header("content-type", "text/csv")
        .body(csv.clone())
        .send()
        .await?;
    anyhow::ensure!(res.status() == 200, "import: {}", res.text().await?);
    let import = t.elapsed();
    on!(&state.db, p => { sqlx::query("CREATE TABLE bench_floor (list_id BIGINT, full_code TEXT, sort_key TEXT, description TEXT, active BOOLEAN)").execute(p).await?; });
    let t = Instant::now();
    on!(&state.db, p => {
        let mut tx = p.begin().await?;
        for chunk in rows.chunks(500) {
            let mut qb = sqlx::QueryBuilder::new("INSERT INTO bench_floor (list_id, full_code, sort_key, description, active) ");
            qb.push_values(chunk, |mut b, (f, d)| {
                b.push_bind(list).push_bind(f).push_bind(costbridge_domain::wbs::sort_key(f, '-')).push_bind(d).push_bind(true);
            });
            qb.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
    });
    report(
        &format!("import {n} codes (CSV over HTTP)"),
        import,
        t.elapsed(),
    );

    let page = |p: usize| {
        url(&format!(
            "/cost_code_lists/{list}/cost_codes?per_page=100&page={p}"
        ))
    };
    for p in [1, n / 100] {
        let t = Instant::now();
        let body: Value = client
            .get(page(p))
            .bearer_auth(&token)
            .send()
            .await?
            .json()
            .await?;
        let ours = t.elapsed();
        anyhow::ensure!(
            body.as_array().is_some_and(|a| !a.is_empty()),
            "empty page {p}"
        );
        let t = Instant::now();
        on!(&state.db, p_ => {
            let _: Vec<(String,)> = sqlx::query_as("SELECT full_code FROM cost_codes WHERE list_id = $1 ORDER BY sort_key, full_code LIMIT 100 OFFSET $2")
                .bind(list).bind(((p - 1) * 100) as i64).fetch_all(p_).await?;
        });
        report(&format!("list page {p} of 100 (HTTP)"), ours, t.elapsed());
    }

    let status: Value = client
        .get(url(&format!("/cost_code_lists/{list}/send_to_erp")))
        .bearer_auth(&token)
        .send()
        .await?
        .json()
        .await?;
    let t = Instant::now();
    let res = client
        .post(url(&format!("/cost_code_lists/{list}/send_to_erp")))
        .bearer_auth(&token)
        .json(&json!({"list_version": status["list_version"]}))
        .send()
        .await?;
    anyhow::ensure!(res.status() == 201, "send: {}", res.text().await?);
    let send = t.elapsed();
    on!(&state.db, p => { sqlx::query("CREATE TABLE bench_copy AS SELECT * FROM cost_codes WHERE 1 = 0").execute(p).await?; });
    let t = Instant::now();
    on!(&state.db, p => { sqlx::query("INSERT INTO bench_copy SELECT * FROM cost_codes WHERE list_id = $1").bind(list).execute(p).await?; });
    report(
        &format!("send {n} codes (HTTP, one submission)"),
        send,
        t.elapsed(),
    );

    let t = Instant::now();
    let res = client
        .post(url("/erp/cost_codes/export"))
        .bearer_auth(&token)
        .json(&json!({"gl_income_account": "4000"}))
        .send()
        .await?;
    anyhow::ensure!(res.status() == 202, "export: {}", res.text().await?);
    let accepted = t.elapsed();
    costbridge_server::worker::run_pending_exports(&state, &worker).await?;
    eprintln!(
        "accept {:.0} ms, worker {:.0} ms",
        ms(accepted),
        ms(t.elapsed() - accepted)
    );
    let export = t.elapsed();
    let file = std::fs::read_dir(&exports)?
        .next()
        .ok_or_else(|| anyhow::anyhow!("no export file"))??
        .path();
    let bytes = std::fs::read(&file)?;
    let t = Instant::now();
    let copy = dir.path().join("floor.iif");
    std::fs::write(&copy, &bytes)?;
    std::fs::File::open(&copy)?.sync_all()?;
    report(
        &format!("accept + export {n} codes to IIF (HTTP + worker)"),
        export,
        t.elapsed(),
    );
    println!("\n(export file {} bytes)", bytes.len());
    Ok(())
}
