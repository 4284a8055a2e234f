//! Builds the application: database, router with its layers, listener, worker; runs it until
//! the shutdown future resolves, then stops both gracefully.
use crate::config::Settings;
use crate::error::ApiError;
use crate::metrics::{Metrics, track};
use crate::retry::Stop;
use crate::state::{AppState, FirstRun};
use crate::throttle::SignInThrottle;
use crate::{api, docs, events, mail, worker};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderName, StatusCode, header};
use axum::response::IntoResponse;
use axum::{Json, Router, middleware};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub struct App {
    listener: TcpListener,
    pub addr: SocketAddr,
    pub state: AppState,
    settings: Settings,
}

impl App {
    /// Connects and migrates the database and binds the listener (port 0 picks a free one).
    pub async fn build(settings: Settings) -> anyhow::Result<App> {
        // A bad [mail] setting stops the start, rather than every email failing later: the
        // SMTP transport too (a host lettre cannot take for TLS, `smtp.example.com:587`, left
        // the mailer off for the life of the process behind one log line).
        mail::Mailer::new(&settings.mail)?;
        settings.worker.check()?;
        settings.server.check()?;
        let db = settings.database().await?;
        db.migrate().await?;
        let cipher = crate::secrets::cipher(&settings, &db).await?;
        let listener = TcpListener::bind(&settings.server.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.server.listen))?;
        let addr = listener.local_addr()?;
        // Reachable from other machines over plain HTTP: the session cookie goes without
        // `Secure` and emails link to an address that is not this one.
        if !addr.ip().is_loopback() && !settings.mail.base_url.starts_with("https://") {
            tracing::warn!(address = %addr, base_url = %settings.mail.base_url,
                "listening for other machines while [mail] base_url is not an https:// address: \
                 put Costbridge behind HTTPS and set [mail] base_url to the address people open");
        }
        let db_empty = db.companies_count().await? == 0;
        let cipher = Arc::new(cipher);
        let state = AppState {
            connectors: settings.connectors(&db, &cipher)?,
            db,
            worker_wake: Arc::new(Notify::new()),
            metrics: Arc::new(Metrics::default()),
            sign_in: Arc::new(SignInThrottle::new(client_ip_header(&settings)?)),
            base_url: settings.mail.base_url.as_str().into(),
            mail_on: settings.mail.host.is_some(),
            cipher,
            first_run: Arc::new(first_run(db_empty)),
            unsynced_checks: Default::default(),
            zones: Default::default(),
            names: Default::default(),
            rates: Default::default(),
            gl_accounts: Default::default(),
            api: settings.api.clone(),
        };
        Ok(App {
            listener,
            addr,
            state,
            settings,
        })
    }

    /// Serves until `shutdown` resolves; the worker (when enabled) stops with the server. Open
    /// requests then get `shutdown_grace_seconds`, or until `again` resolves.
    pub async fn run(
        self, shutdown: impl Future<Output = ()> + Send + 'static,
        again: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let on = self.settings.worker.enabled;
        let worker = on.then(|| {
            tokio::spawn(worker::run(
                self.state.clone(),
                self.settings.worker.clone(),
                Stop::new(stop_rx.clone()),
            ))
        });
        // Email delivery and the daily summary are background work too: same switch, same stop.
        let mailer = on.then(|| {
            tokio::spawn(mail::run(
                self.state.db.clone(),
                self.settings.mail.clone(),
                Stop::new(stop_rx.clone()),
            ))
        });
        // Event subscribers' deliveries too.
        let deliveries = on.then(|| {
            tokio::spawn(events::run(
                self.state.clone(),
                self.settings.worker.clone(),
                Stop::new(stop_rx.clone()),
            ))
        });
        // The rate-limit counts reach the shared count whether or not this instance runs the
        // background work: other instances' limits depend on them.
        let rates = {
            let (state, mut stop) = (self.state.clone(), Stop::new(stop_rx.clone()));
            tokio::spawn(async move { state.rates.run(state.db.clone(), stop.wait()).await })
        };
        let app = router(self.state.clone(), &self.settings);
        tracing::info!(address = %self.addr, database = %crate::config::shown_database(&self.settings.server.database_url), "costbridge listening");
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        let (asked_tx, asked_rx) = tokio::sync::oneshot::channel();
        let serving = axum::serve(self.listener, app).with_graceful_shutdown(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
            let _ = asked_tx.send(());
        });
        // Open requests get `shutdown_grace_seconds` to finish, or until a second signal: one
        // slow upload or download kept a stopping server running with no end, and a second
        // Ctrl-C did nothing.
        let grace = std::time::Duration::from_secs(self.settings.server.shutdown_grace_seconds);
        let cut_short = async move {
            if asked_rx.await.is_err() {
                return std::future::pending().await;
            }
            tokio::select! {
                () = tokio::time::sleep(grace) => {}
                () = again => {}
            }
        };
        tokio::select! {
            served = serving => served?,
            () = cut_short => tracing::warn!(
                grace_seconds = grace.as_secs(),
                "requests still open when the shutdown grace ended (or on a second signal); \
                 stopping without them"
            ),
        }
        if let Some(w) = worker {
            let _ = w.await;
        }
        if let Some(m) = mailer {
            let _ = m.await;
        }
        if let Some(d) = deliveries {
            let _ = d.await;
        }
        let _ = rates.await;
        self.state.db.close().await;
        Ok(())
    }
}

/// The first Ctrl-C or SIGTERM, and the second. One listener hears both from the start: a
/// second listener set up once the first signal had come missed a second signal sent before it
/// was ready, and the server then waited out the whole grace.
pub fn signals() -> (
    impl Future<Output = ()> + Send + 'static,
    impl Future<Output = ()> + Send + 'static,
) {
    let (heard, count) = tokio::sync::watch::channel(0u32);
    #[cfg(unix)]
    let listening = {
        use tokio::signal::unix::{SignalKind, signal};
        signal(SignalKind::interrupt()).and_then(|i| Ok((i, signal(SignalKind::terminate())?)))
    };
    tokio::spawn(async move {
        #[cfg(unix)]
        let Ok((mut interrupt, mut terminate)) = listening else {
            tracing::warn!("cannot listen for Ctrl-C or SIGTERM: stop the process by killing it");
            return std::future::pending().await;
        };
        loop {
            #[cfg(unix)]
            tokio::select! { _ = interrupt.recv() => {}, _ = terminate.recv() => {} }
            // Without a listener no signal comes: waiting on, rather than counting the error.
            #[cfg(not(unix))]
            if tokio::signal::ctrl_c().await.is_err() {
                return std::future::pending().await;
            }
            heard.send_modify(|n| *n += 1);
            if *heard.borrow() == 1 {
                tracing::info!("shutting down");
            } else {
                tracing::warn!("a second signal: stopping without waiting for open requests");
            }
        }
    });
    let nth = |n: u32| {
        let mut count = count.clone();
        async move {
            // The sender lives as long as the process listens; without it, no signal comes.
            if count.wait_for(|&c| c >= n).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    };
    (nth(1), nth(2))
}

/// On an empty database, the one-time code first-run setup asks for (`serve` logs and prints
/// it). Setup asks for it wherever it is opened from: a proxy on this machine passes on
/// requests from anywhere under the address it was given, so neither the peer nor the `Host`
/// header tells the person at the server's console from whoever reached the address first.
fn first_run(empty: bool) -> FirstRun {
    FirstRun {
        code: empty.then(|| crate::password::new_token()[3..15].to_owned()),
    }
}

/// The `[server] client_ip_header` setting as a header name; a bad one stops the start.
fn client_ip_header(settings: &Settings) -> anyhow::Result<Option<HeaderName>> {
    settings
        .server
        .client_ip_header
        .as_deref()
        .map(|h| {
            HeaderName::try_from(h.trim())
                .map_err(|e| anyhow::anyhow!("[server] client_ip_header '{h}': {e}"))
        })
        .transpose()
}

/// The routes the OpenAPI document describes (the JSON API, health and metrics) and the
/// document made from them, with the docs' own route.
pub fn documented(
    state: &AppState, settings: &Settings,
) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (routes, mut openapi) = OpenApiRouter::new()
        .merge(api::router(
            state,
            settings.server.max_body_bytes,
            settings.server.max_import_bytes,
        ))
        .routes(routes!(healthz))
        .merge(
            OpenApiRouter::new().routes(routes!(metrics)).route_layer(
                middleware::from_fn_with_state(
                    settings
                        .server
                        .metrics_token
                        .as_ref()
                        .map(|t| Arc::<str>::from(t.expose())),
                    metrics_token,
                ),
            ),
        )
        .split_for_parts();
    openapi.merge(<docs::DocsApi as utoipa::OpenApi>::openapi());
    (routes, openapi)
}

pub fn router(state: AppState, settings: &Settings) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    let (routes, _) = documented(&state, settings);
    let doc = {
        let (state, settings) = (state.clone(), settings.clone());
        docs::Document::new(move || documented(&state, &settings).1)
    };
    Router::new()
        .merge(routes)
        .merge(api::qbwc::soap_router())
        .merge(docs::router(doc).layer(middleware::from_fn(crate::web::security_headers)))
        .merge(crate::web::router(settings.server.max_import_bytes))
        .merge(mail::unsubscribe::router().layer(middleware::from_fn(crate::web::security_headers)))
        .fallback(|| async { ApiError::not_found() })
        .layer(middleware::from_fn_with_state(state.metrics.clone(), track))
        .layer(DefaultBodyLimit::max(settings.server.max_body_bytes))
        .layer(CatchPanicLayer::custom(panicked))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

/// A handler that panicked answers the documented error body (500 `internal`), not plain text.
/// The panic is logged here, in the request's span (its id, in JSON when logs are): the
/// default hook's plain line on stderr could not be matched to the 500 the person saw.
pub(crate) fn panicked(
    payload: Box<dyn std::any::Any + Send + 'static>,
) -> axum::response::Response {
    let message = payload
        .downcast_ref::<&str>()
        .map(|m| (*m).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned());
    tracing::error!(
        panic = message.as_deref().unwrap_or("(no message)"),
        "a request failed unexpectedly"
    );
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        crate::ops::UNSAVED,
    )
    .into_response()
}

/// Every line logged while a request is handled carries its request id (the `x-request-id`
/// header, made up when the client sent none and echoed in the response), so one request can
/// be followed through handlers, queries and connector calls at the default level.
fn request_span(req: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    // `company` and `user` are filled in once the caller is known (`Caller::new`).
    tracing::info_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        path = %logged_path(req.uri().path()),
        company = tracing::field::Empty,
        user = tracing::field::Empty,
    )
}

/// A request's path as the log keeps it: an unsubscribe link's last segment is the token that
/// unsubscribes its user, and whoever reads the logs must not be able to.
fn logged_path(path: &str) -> std::borrow::Cow<'_, str> {
    match path.strip_prefix("/unsubscribe/digest/") {
        Some(rest) => {
            let user = rest.split('/').next().unwrap_or_default();
            format!("/unsubscribe/digest/{user}/…").into()
        }
        None => path.into(),
    }
}

#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(example = json!({"status": "ok"}))]
struct Health {
    /// `ok`, or `unavailable` when the database does not answer.
    status: &'static str,
}

/// 200 when the database answers
#[utoipa::path(get, path = "/healthz", tag = "service", security(()),
    responses((status = 200, description = "The database answers", body = Health),
        (status = 503, description = "The database does not answer", body = Health, example = json!({"status": "unavailable"}))))]
async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    match answered(state.db.ping()).await {
        Ok(()) => (StatusCode::OK, Json(Health { status: "ok" })),
        Err(e) => {
            tracing::error!(error = %e, "health check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(Health {
                    status: "unavailable",
                }),
            )
        }
    }
}

/// How long `/healthz` and `/metrics` wait for the database: a connection to one that is down
/// was waited for 10 s (the pool's wait), longer than a probe or a scrape waits.
const DB_ANSWER: std::time::Duration = std::time::Duration::from_secs(2);

/// `read`'s answer, or a storage error when it took longer than [`DB_ANSWER`].
async fn answered<T>(
    read: impl Future<Output = Result<T, costbridge_storage::StoreError>>,
) -> Result<T, costbridge_storage::StoreError> {
    tokio::time::timeout(DB_ANSWER, read)
        .await
        .unwrap_or_else(|_| {
            Err(costbridge_storage::StoreError::Conflict(format!(
                "the database did not answer within {} s",
                DB_ANSWER.as_secs()
            )))
        })
}

/// With `[server] metrics_token` set, `/metrics` needs it as a bearer token. The comparison
/// takes the same time whatever the token sent, so timing cannot guess it byte by byte.
async fn metrics_token(
    State(token): State<Option<Arc<str>>>, req: axum::extract::Request, next: middleware::Next,
) -> axum::response::Response {
    if let Some(token) = token {
        let sent = crate::extract::credentials(req.headers(), "Bearer");
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            sent.unwrap_or("").as_bytes(),
            token.as_bytes(),
        )) {
            // The API's advice (sign in for a new token) does not apply: this token is the
            // operator's setting.
            let mut e = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                match sent {
                    Some(_) => {
                        "Costbridge refused this bearer token for /metrics: it is not the \
                         server's [server] metrics_token (COSTBRIDGE__SERVER__METRICS_TOKEN). \
                         Send the token the operator set there."
                    }
                    None => {
                        "/metrics needs the server's [server] metrics_token as a bearer token \
                         (Authorization: Bearer <token>); ask the operator for it."
                    }
                },
            );
            e.challenge = sent.map(|_| crate::error::INVALID_TOKEN);
            return e.into_response();
        }
    }
    next.run(req).await
}

/// Prometheus metrics
///
/// Open unless `[server] metrics_token` is set; then it needs that token as a bearer token.
#[utoipa::path(get, path = "/metrics", tag = "service", security((), ("metrics_token" = [])),
    responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain", body = String,
        example = "# TYPE costbridge_export_jobs_open gauge\ncostbridge_export_jobs_open 0\n"),
        (status = 401, description = "`unauthorized`: `[server] metrics_token` is set, and it was not sent or another token was")))]
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    use costbridge_domain::events::DeliveryStatus;
    use costbridge_domain::queue::MailStatus;
    // -1 says the database did not answer: a gauge that stopped moving would hide it. The
    // reads run at once, each for at most `DB_ANSWER`: one after another, each waiting for a
    // connection to a database that is down, a scrape took a minute and Prometheus saw only
    // a target that timed out.
    let db = &state.db;
    let got = |n: Result<i64, _>| n.unwrap_or(-1) as f64;
    let (depth, emails, emails_failed, events, events_failed, alarms) = tokio::join!(
        answered(db.export_queue_depth()),
        answered(db.outbox_count(MailStatus::Pending)),
        answered(db.outbox_count(MailStatus::Failed)),
        answered(db.events_count(DeliveryStatus::Pending)),
        answered(db.events_count(DeliveryStatus::Failed)),
        answered(db.export_alarms()),
    );
    let (depth, emails, emails_failed) = (got(depth), got(emails), got(emails_failed));
    let (events, events_failed) = (got(events), got(events_failed));
    let alarm = |f: fn(&costbridge_storage::jobs::ExportAlarms) -> i64| {
        alarms.as_ref().map_or(-1.0, |a| f(a) as f64)
    };
    let text = state.metrics.render(&[
        (
            "costbridge_export_jobs_open",
            "Export jobs queued or running.",
            depth,
        ),
        (
            "costbridge_export_job_oldest_seconds",
            "How long the oldest unfinished export job the worker has to do has waited (not \
             those waiting for a QuickBooks Web Connector); 0 when none.",
            alarm(|a| a.oldest_seconds),
        ),
        (
            "costbridge_export_jobs_retrying",
            "Export jobs waiting to try again after their ERP could not be reached.",
            alarm(|a| a.retrying),
        ),
        (
            "costbridge_codes_failed",
            "Cost codes whose export failed, not yet retried, rejected or edited.",
            alarm(|a| a.codes_failed),
        ),
        (
            "costbridge_emails_pending",
            "Emails waiting in the outbox to be sent.",
            emails,
        ),
        (
            "costbridge_emails_failed",
            "Emails given up on after [mail] max_attempts (kept in the outbox).",
            emails_failed,
        ),
        (
            "costbridge_events_pending",
            "Events waiting to be delivered to subscribers.",
            events,
        ),
        (
            "costbridge_events_failed",
            "Event deliveries given up on after [worker] max_attempts (Redeliver sends them again).",
            events_failed,
        ),
    ]);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unsubscribe_token_is_not_logged() {
        assert_eq!(
            logged_path("/unsubscribe/digest/7/4f9a2c.e81b"),
            "/unsubscribe/digest/7/…"
        );
        assert_eq!(logged_path("/api/v1/me"), "/api/v1/me");
    }
}
