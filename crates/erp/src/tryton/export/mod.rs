//! Export: one analytic account per cost code, idempotent by looking codes up before writing.
//! `plan` decides what to write from what Tryton holds; this module runs its steps over RPC.
//!
//! The round trips for a batch of new codes: find the root, one bulk `search_read` by code
//! (1,000 codes per call), one `create` per tier level (1,000 records per call). Updates add
//! one `write` call for all changed rows (plus one before, to reactivate inactive records, which
//! Tryton keeps read-only), and codes with GL accounts add the product calls (`products`).
mod plan;
mod rows;

use super::calls::{ANALYTIC, Item, ROOT_CODE, apply, down, find_root};
use super::products;
use super::rpc::{Fault, Rpc, as_bool, as_id, as_text};
use crate::{ConnectorError, ExportContext, ExportLine, LineResult};
use plan::Plan;
use rows::Account;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::Instant;

/// Records per `create`/`write` call and codes per lookup (the verified sweet spot).
const CHUNK: usize = 1000;

async fn write(
    rpc: &Rpc, create: bool, items: &[Item],
) -> Result<Vec<Result<i64, String>>, ConnectorError> {
    apply(rpc, ANALYTIC, create, items, CHUNK).await
}

pub(super) async fn export(
    rpc: &Rpc, ctx: &ExportContext, lines: &[ExportLine<'_>],
) -> Result<Vec<(i64, LineResult)>, ConnectorError> {
    let started = Instant::now();
    if lines.is_empty() {
        return Ok(Vec::new());
    }
    let root = find_root(rpc, true).await.map_err(down)?.ok_or_else(|| {
        ConnectorError::Unavailable(format!(
            "Tryton did not create the analytic root {ROOT_CODE}"
        ))
    })?;
    let (codes, origin_ids) = plan::lookups(lines);
    let found = find_accounts(rpc, root, &codes, &origin_ids)
        .await
        .map_err(down)?;
    let mut plan = Plan::new(lines, ctx.max_description, root, found);

    let step = plan.reactivations();
    let results = write(rpc, false, &step.items).await?;
    plan.reactivated(step, results);

    for depth in 0..plan.depths() {
        let step = plan.creates(depth);
        let results = write(rpc, true, &step.items).await?;
        plan.created(step, results);
    }

    let step = plan.edits();
    let results = write(rpc, false, &step.items).await?;
    for (id, m) in plan.edited(step, results) {
        tracing::warn!(id, "could not make the Tryton parent account a view: {m}");
    }
    let undo = plan.undo();
    if !undo.is_empty() {
        for res in write(rpc, false, &undo).await? {
            if let Err(m) = res {
                tracing::warn!("could not deactivate a Tryton analytic account again: {m}");
            }
        }
    }

    let (who, wanted) = plan.products();
    if !wanted.is_empty() {
        let results = products::sync(rpc, &wanted).await?;
        plan.products_synced(who, results);
    }

    tracing::info!(
        lines = lines.len(),
        created = plan.created,
        updated = plan.updated,
        failed = plan.failed(),
        ms = started.elapsed().as_millis() as u64,
        "Tryton export batch done"
    );
    Ok(plan.results())
}

/// The accounts under `root` with one of `codes` or one of `ids` (inactive ones included).
async fn find_accounts(
    rpc: &Rpc, root: i64, codes: &[&str], ids: &[i64],
) -> Result<Vec<Account>, Fault> {
    let mut out: Vec<Account> = Vec::new();
    let mut seen = HashSet::new();
    let chunks = codes.len().div_ceil(CHUNK).max(1);
    for k in 0..chunks {
        let part = &codes[(k * CHUNK).min(codes.len())..((k + 1) * CHUNK).min(codes.len())];
        let mut domain = vec![json!(["root", "=", root])];
        if k == 0 && !ids.is_empty() {
            domain.push(json!(["OR", ["code", "in", part], ["id", "in", ids]]));
        } else if part.is_empty() {
            continue;
        } else {
            domain.push(json!(["code", "in", part]));
        }
        let found = rpc
            .search_read(
                ANALYTIC,
                Value::Array(domain),
                None,
                json!([["id", "ASC"]]),
                &["code", "name", "active", "type", "parent", "childs"],
                false,
            )
            .await?;
        for r in found {
            let Some(id) = as_id(r.get("id")) else {
                continue;
            };
            if !seen.insert(id) {
                continue;
            }
            out.push(Account {
                id,
                code: as_text(r.get("code")).unwrap_or_default(),
                name: as_text(r.get("name")).unwrap_or_default(),
                active: as_bool(r.get("active")),
                kind: as_text(r.get("type")).unwrap_or_default(),
                parent: as_id(r.get("parent")),
                has_children: r
                    .get("childs")
                    .and_then(Value::as_array)
                    .is_some_and(|c| !c.is_empty()),
            });
        }
    }
    Ok(out)
}
