//! Event subscriptions (README, Integrations → Events): a company's admins choose where its
//! events go and read how their delivery went. The secret that signs them is sealed with the
//! connector secrets' key on the way in and never comes back out.
use super::{Fields, OpError, OpResult, Window, company, require};
use crate::state::AppState;
use costbridge_domain::events::EventType;
use costbridge_erp::{MASK, url_problem};
use costbridge_storage::events::{StoredEvent, Subscription};
use costbridge_storage::users::User;

/// The shortest signing secret accepted, as for the webhook connector.
pub const MIN_SECRET: usize = 16;
const MAX_SECRET: usize = 200;
const MAX_URL: usize = 2000;

/// A subscription as typed: checked by [`create`] before anything is written.
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"url": "https://hooks.example.com/costbridge",
    "secret": "a-long-random-signing-secret", "event_types": ["cost_code.synced", "cost_code.failed"]}))]
pub struct NewSubscription {
    /// Where the events are POSTed: https, on a public address (Costbridge refuses private ones).
    pub url: String,
    /// Signs each delivery (16 to 200 characters); never shown again.
    pub secret: String,
    /// The events to send (at least one).
    #[schema(value_type = Vec<EventType>)]
    pub event_types: Vec<String>,
}

/// Subscriptions are the company's Admin-tool admins' to manage and to read.
fn admin(caller: &User, cid: i64) -> OpResult<i64> {
    let company = company(caller, cid)?;
    require(caller.permissions.can_manage_users(), "admin_tool=admin")?;
    Ok(company)
}

#[tracing::instrument(skip(state, caller), fields(user = caller.id))]
pub async fn list(state: &AppState, caller: &User, cid: i64) -> OpResult<Vec<Subscription>> {
    let company = admin(caller, cid)?;
    Ok(state.db.event_subscriptions(company).await?)
}

#[tracing::instrument(skip(state, caller), fields(user = caller.id))]
pub async fn get(state: &AppState, caller: &User, cid: i64, id: i64) -> OpResult<Subscription> {
    let company = admin(caller, cid)?;
    Ok(state.db.event_subscription(company, id).await?)
}

/// Checks and saves a subscription; every bad field is named, and nothing is saved then.
#[tracing::instrument(skip(state, caller, new), fields(user = caller.id))]
pub async fn create(
    state: &AppState, caller: &User, cid: i64, new: &NewSubscription,
) -> OpResult<Subscription> {
    let company = admin(caller, cid)?;
    let mut errors = Fields::new();
    let mut add =
        |field: &str, message: String| errors.entry(field.to_owned()).or_default().push(message);
    let url = new.url.trim();
    if let Some(problem) = url_problem(url) {
        add("url", problem.to_owned());
    } else if url.len() > MAX_URL {
        add("url", format!("is longer than {MAX_URL} characters"));
    } else if let Err(why) = state.connectors.outbound.check(url).await {
        add("url", format!("cannot be used: {why}"));
    }
    let secret = new.secret.as_str();
    let length = secret.chars().count();
    if secret == MASK || length < MIN_SECRET {
        add(
            "secret",
            format!("must be at least {MIN_SECRET} characters"),
        );
    } else if length > MAX_SECRET || secret.chars().any(char::is_control) {
        add(
            "secret",
            format!("must be at most {MAX_SECRET} characters, with no control characters"),
        );
    }
    let mut types = Vec::new();
    for name in &new.event_types {
        match EventType::parse(name.trim()) {
            Ok(t) => types.push(t),
            Err(_) => add(
                "event_types",
                format!(
                    "'{name}' is not an event type; choose from {}",
                    type_names()
                ),
            ),
        }
    }
    if new.event_types.is_empty() {
        add(
            "event_types",
            format!("choose at least one of {}", type_names()),
        );
    }
    if !errors.is_empty() {
        return Err(OpError::Invalid(errors));
    }
    let sealed = state.cipher.seal(secret);
    let id = state
        .db
        .create_event_subscription(company, caller.id, url, &sealed, &types)
        .await?;
    Ok(state.db.event_subscription(company, id).await?)
}

fn type_names() -> String {
    EventType::ALL.map(EventType::as_str).join(", ")
}

#[tracing::instrument(skip(state, caller), fields(user = caller.id))]
pub async fn delete(state: &AppState, caller: &User, cid: i64, id: i64) -> OpResult<()> {
    let company = admin(caller, cid)?;
    Ok(state
        .db
        .delete_event_subscription(company, caller.id, id)
        .await?)
}

/// One page of a subscription's delivery log (newest first) and how many events it holds.
#[tracing::instrument(skip(state, caller), fields(user = caller.id))]
pub async fn deliveries(
    state: &AppState, caller: &User, cid: i64, id: i64, page: Window,
) -> OpResult<(Vec<StoredEvent>, i64)> {
    let company = admin(caller, cid)?;
    // A missing subscription is a 404, not an empty log.
    state.db.event_subscription(company, id).await?;
    Ok(state
        .db
        .event_deliveries(company, id, page.limit, page.offset)
        .await?)
}

/// Sends one event again, with its id unchanged.
#[tracing::instrument(skip(state, caller), fields(user = caller.id))]
pub async fn redeliver(
    state: &AppState, caller: &User, cid: i64, id: i64, event: i64,
) -> OpResult<()> {
    let company = admin(caller, cid)?;
    Ok(state
        .db
        .redeliver_event(company, caller.id, id, event)
        .await?)
}
