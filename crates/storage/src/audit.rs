//! The audit log: who did what to which entity, with the values before and after.
use crate::clients::client_label;
use crate::tx::{Arg, PageQuery, Queries, Tx};
use crate::{Db, StoreError};
use costbridge_domain::permission::UserKind;
use serde::Serialize;
use serde_json::Value;
use sqlx::AssertSqlSafe;
use time::OffsetDateTime;

/// Cuts the addresses of an event's values to their scheme and host as they are read. Rows
/// are written so (`ConnectorSettings::summary`, event subscriptions), but older ones kept
/// whole URLs, and the audit log is open to read-only users while a hook's path may be its
/// credential.
fn hosts_only(action: &str, v: &mut Value) {
    let url = match action {
        "erp_connection.saved" => v.pointer_mut("/connector/url"),
        a if a.starts_with("event_subscription.") => v.get_mut("url"),
        _ => None,
    };
    if let Some(Value::String(url)) = url {
        *url = costbridge_domain::url::host_only(url);
    }
}

/// Every action Costbridge records, with the type of entity it is about: the audit log's
/// filters take these names only, so a typo is refused rather than answered with an empty
/// list. Kept here, beside the writers: [`record`] refuses (in debug builds, so in every test)
/// an action it does not list, and the test `every_written_action_is_listed` reads this
/// crate's and the server's sources for the names written by SQL and by `record` alike.
pub const ACTIONS: &[(&str, &str)] = &[
    ("api_client.created", "api_client"),
    ("api_client.revoked", "api_client"),
    ("api_client.rotated", "api_client"),
    ("company.created", "company"),
    ("company.updated", "company"),
    ("cost_code.created", "cost_code"),
    ("cost_code.deleted", "cost_code"),
    ("cost_code.exported", "cost_code"),
    ("cost_code.failed", "cost_code"),
    ("cost_code.pulled", "cost_code"),
    ("cost_code.rejected", "cost_code"),
    ("cost_code.retried", "cost_code"),
    ("cost_code.retrieved", "cost_code"),
    ("cost_code.sent", "cost_code"),
    ("cost_code.synced", "cost_code"),
    ("cost_code.updated", "cost_code"),
    ("cost_code_list.created", "cost_code_list"),
    ("cost_code_list.imported", "cost_code_list"),
    ("cost_code_list.made_erp_list", "cost_code_list"),
    ("erp_connection.saved", "company"),
    ("erp_item.gl_accounts_set", "erp_item"),
    ("event.redelivered", "event"),
    ("event_subscription.created", "event_subscription"),
    ("event_subscription.deleted", "event_subscription"),
    ("export_job.queued", "export_job"),
    ("qbwc.password_set", "company"),
    ("qbwc.sync_requested", "company"),
    ("submission.created", "submission"),
    ("user.created", "user"),
    ("user.credentials_revoked", "user"),
    ("user.current_password_refused", "user"),
    ("user.digest_unsubscribed", "user"),
    ("user.password_reset", "user"),
    ("user.password_reset_issued", "user"),
    ("user.sign_in_failed", "user"),
    ("user.sign_in_locked", "user"),
    ("user.sign_in_refused", "user"),
    ("user.signed_in", "user"),
    ("user.updated", "user"),
    ("xero.connected", "company"),
    ("xero.disconnected", "company"),
    ("xero.needs_reconnect", "company"),
    ("xero.organisation_picked", "company"),
];

/// The entity types of [`ACTIONS`], each once, in order.
pub fn entity_types() -> Vec<&'static str> {
    let mut types: Vec<&str> = ACTIONS.iter().map(|(_, t)| *t).collect();
    types.sort_unstable();
    types.dedup();
    types
}

/// The entity type `action` is recorded about, if it is one of [`ACTIONS`].
pub fn entity_type_of(action: &str) -> Option<&'static str> {
    ACTIONS.iter().find(|(a, _)| *a == action).map(|(_, t)| *t)
}

/// Appends one audit event inside the caller's transaction: `actor` did `action` to `entity`
/// (its type and id), which went from `before` to `after`.
pub(crate) async fn record(
    tx: &mut Tx<'_>, company: i64, actor: Option<i64>, action: &str, entity: (&str, i64),
    before: Option<Value>, after: Option<Value>,
) -> Result<(), StoreError> {
    debug_assert_eq!(
        entity_type_of(action),
        Some(entity.0),
        "list the action in audit::ACTIONS, with its entity type, so the log's filter takes it"
    );
    tx.execute(
        "INSERT INTO audit_events (company_id, at, actor_id, action, \
         entity_type, entity_id, before, after) VALUES ($1, $2, $3, \
         $4, $5, $6, $7, $8)",
        [
            company.into(),
            crate::now().into(),
            actor.into(),
            action.into(),
            entity.0.into(),
            entity.1.into(),
            json_text(before).into(),
            json_text(after).into(),
        ],
    )
    .await?;
    Ok(())
}

/// Records what `user` did to their own account.
pub(crate) async fn by_self(
    tx: &mut Tx<'_>, company: i64, user: i64, action: &str, before: Option<Value>,
    after: Option<Value>,
) -> Result<(), StoreError> {
    record(
        tx,
        company,
        Some(user),
        action,
        ("user", user),
        before,
        after,
    )
    .await
}

/// JSON is stored as text on both backends (so bulk SQL can build it with `||`).
pub fn json_text(v: Option<Value>) -> Option<String> {
    v.map(|v| v.to_string())
}

/// Who did it: a person (`kind` "user", with their email) or a machine client (`kind`
/// "api_client", its name and no email), never to be mistaken for one another.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Actor {
    pub id: i64,
    pub kind: UserKind,
    pub email: Option<String>,
    pub name: String,
}

impl Actor {
    /// How a page or a CSV file names the actor.
    pub fn label(&self) -> String {
        match &self.email {
            Some(email) => email.clone(),
            None => client_label(&self.name),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": 90, "at": "2026-11-30T15:00:00Z", "actor": {"id": 1, "kind": "user", "email": "admin@demo.example", "name": "Demo Admin"},
    "action": "cost_code.updated", "entity_type": "cost_code", "entity_id": 43,
    "before": {"description": "Permits"}, "after": {"description": "Permits and fees"}}))]
pub struct AuditEvent {
    pub id: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    #[schema(required = true)]
    pub actor: Option<Actor>,
    pub action: String,
    pub entity_type: String,
    pub entity_id: i64,
    #[schema(required = true)]
    pub before: Option<Value>,
    #[schema(required = true)]
    pub after: Option<Value>,
}

impl AuditEvent {
    /// How a page names who did it: the actor's label, or "system" when no one did.
    pub fn actor_label(&self) -> String {
        self.actor
            .as_ref()
            .map(Actor::label)
            .unwrap_or_else(|| "system".into())
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    at: OffsetDateTime,
    actor_id: Option<i64>,
    actor_email: Option<String>,
    actor_name: Option<String>,
    actor_kind: Option<String>,
    action: String,
    entity_type: String,
    entity_id: i64,
    before: Option<String>,
    after: Option<String>,
}

#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    pub entity_type: Option<String>,
    pub entity_id: Option<i64>,
    pub action: Option<String>,
    /// Only events older than this one: a download reads page after page by key, so events
    /// recorded meanwhile neither shift rows into the next page (written twice) nor join it.
    pub before_id: Option<i64>,
    /// Kinds of entity the reader may not see (fixed names, never a request's text).
    pub hidden: &'static [&'static str],
}

/// The rows the filter selects, after `FROM`.
fn filter(f: &AuditFilter) -> String {
    let mut sql = String::from(
        "FROM audit_events a LEFT JOIN users u ON u.id = a.actor_id WHERE a.company_id = $1 \
         AND ($2 IS NULL OR a.entity_type = $2) AND ($3 IS NULL OR a.entity_id = $3) AND ($4 \
         IS NULL OR a.action = $4) AND ($5 IS NULL OR a.id < $5)",
    );
    if !f.hidden.is_empty() {
        let names: Vec<String> = f.hidden.iter().map(|t| format!("'{t}'")).collect();
        sql.push_str(&format!(" AND a.entity_type NOT IN ({})", names.join(", ")));
    }
    sql
}

/// The actor of an event, when it has one; a `users.kind` this version does not know is an
/// error, not a guess.
fn actor(
    id: Option<i64>, email: Option<String>, name: Option<String>, kind: Option<String>,
) -> Result<Option<Actor>, StoreError> {
    let (Some(id), Some(email), Some(name), Some(kind)) = (id, email, name, kind) else {
        return Ok(None);
    };
    let kind = UserKind::try_from(kind).map_err(StoreError::decode)?;
    let email = (kind == UserKind::User).then_some(email);
    Ok(Some(Actor {
        id,
        kind,
        email,
        name,
    }))
}

/// The events `rows` (a [`filter`]) selects, newest first.
fn list_sql(rows: &str) -> String {
    format!(
        "SELECT a.id, a.at, a.actor_id, u.email AS actor_email, \
         u.name AS actor_name, u.kind AS actor_kind, \
         a.action, a.entity_type, a.entity_id, a.before, a.after \
         {rows} ORDER BY a.id DESC"
    )
}

/// The arguments of [`filter`]'s placeholders, with `before_id` as given (not the filter's: the
/// count of a page by key is of every event the other filters select).
fn filter_args(company: i64, f: &AuditFilter, before_id: Option<i64>) -> Vec<Arg> {
    vec![
        company.into(),
        (&f.entity_type).into(),
        f.entity_id.into(),
        (&f.action).into(),
        before_id.into(),
    ]
}

/// The rows read, as events.
fn events_of(rows: Vec<Row>) -> Result<Vec<AuditEvent>, StoreError> {
    let parse = |action: &str, s: Option<String>| {
        let mut v: Option<Value> = s.and_then(|s| serde_json::from_str(&s).ok());
        if let Some(v) = &mut v {
            hosts_only(action, v);
        }
        v
    };
    rows.into_iter()
        .map(|r| {
            Ok(AuditEvent {
                before: parse(&r.action, r.before),
                after: parse(&r.action, r.after),
                id: r.id,
                at: r.at,
                actor: actor(r.actor_id, r.actor_email, r.actor_name, r.actor_kind)?,
                action: r.action,
                entity_type: r.entity_type,
                entity_id: r.entity_id,
            })
        })
        .collect()
}

impl Db {
    /// Newest first, one page at a time; returns the page and the total count. With
    /// `before_id` (paging by key, `offset` then 0) the count is still of every event the
    /// other filters select, as on a numbered page: the first and last pages are numbered
    /// from it.
    pub async fn audit_events(
        &self, company: i64, f: &AuditFilter, limit: i64, offset: i64,
    ) -> Result<(Vec<AuditEvent>, i64), StoreError> {
        let rows = filter(f);
        let count_sql = format!("SELECT COUNT(*) {rows}");
        if f.before_id.is_some() {
            let events = self.audit_events_before(company, f, limit).await?;
            let total = self
                .pool()
                .scalar(AssertSqlSafe(count_sql), filter_args(company, f, None))
                .await?;
            return Ok((events, total));
        }
        let (rows, total): (Vec<Row>, i64) = self
            .page(PageQuery {
                list_sql: &list_sql(&rows),
                count_sql: &count_sql,
                args: filter_args(company, f, None),
                limit,
                offset,
            })
            .await?;
        Ok((events_of(rows)?, total))
    }

    /// The next `limit` events the filter selects before its `before_id`, newest first, and
    /// no count: a download reads page after page and counts once.
    pub async fn audit_events_before(
        &self, company: i64, f: &AuditFilter, limit: i64,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let mut args = filter_args(company, f, f.before_id);
        args.push(limit.into());
        let sql = format!("{} LIMIT ${}", list_sql(&filter(f)), args.len());
        let rows: Vec<Row> = self.pool().fetch_all(AssertSqlSafe(sql), args).await?;
        events_of(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::ACTIONS;
    use std::path::Path;

    fn sources(dir: &Path, out: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).expect("a source folder") {
            let path = entry.expect("a folder entry").path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("a source file");
                out.push((path.display().to_string(), text));
            }
        }
    }

    /// Every quoted name `prefix.word` (Rust `"…"` or SQL `'…'`, outside comments) under a
    /// prefix that actions use is an action, so it must be listed; a name built at run time
    /// (`format!` of cost_code.{state}) cannot be checked, so it is refused too: write each
    /// name out.
    #[test]
    fn every_written_action_is_listed() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        sources(&root.join("src"), &mut files);
        sources(&root.join("../server/src"), &mut files);
        let mut prefixes: Vec<&str> = ACTIONS
            .iter()
            .filter_map(|(a, _)| a.split_once('.').map(|(p, _)| p))
            .collect();
        prefixes.dedup();
        let mut unlisted = Vec::new();
        for (file, text) in &files {
            for quote in ['"', '\''] {
                for prefix in &prefixes {
                    let opening = format!("{quote}{prefix}.");
                    for (at, _) in text.match_indices(&opening) {
                        let line = &text[text[..at].rfind('\n').map_or(0, |n| n + 1)..at];
                        let rest = &text[at + opening.len()..];
                        let word: String = rest
                            .chars()
                            .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                            .collect();
                        // A bare prefix (`starts_with("event_subscription.")`) names no action.
                        let named = !word.is_empty() && rest[word.len()..].starts_with(quote);
                        if line.trim_start().starts_with("//") || !(named || rest.starts_with('{'))
                        {
                            continue;
                        }
                        let name = format!("{prefix}.{word}");
                        if !ACTIONS.iter().any(|(a, _)| *a == name) {
                            unlisted.push(format!("{file}: {name}"));
                        }
                    }
                }
            }
        }
        assert!(unlisted.is_empty(), "not in audit::ACTIONS: {unlisted:?}");
    }
}
