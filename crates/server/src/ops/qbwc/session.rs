//! The SOAP service the QuickBooks Web Connector polls. A session: `authenticate` (a ticket
//! bound to the company), then rounds of `sendRequestXML` (the next qbXML request) and
//! `receiveResponseXML` (QuickBooks' answers, applied), then `closeConnection`. What each
//! round asks and how answers are applied is in `rounds`.
use super::rounds::{advance, apply};
use crate::ops::OpError;
use crate::ops::connection::connection;
use crate::password;
use crate::state::AppState;
use costbridge_erp::qbwc::qbxml;
use costbridge_erp::qbwc::soap::{Call, Reply};
use costbridge_storage::qbwc::QbwcSession;
use costbridge_storage::{StoreError, now};
use std::net::IpAddr;
use std::time::Instant;
use time::Duration;

/// A ticket lives this long; QBWC starts a new session at its next run.
const TICKET_TTL: Duration = Duration::hours(1);
/// Answers one call. Storage failures are returned (the SOAP handler makes them a fault).
#[tracing::instrument(skip_all, fields(method = %call.method, company))]
pub async fn answer(state: &AppState, client: IpAddr, call: &Call) -> Result<Reply, OpError> {
    let ticket = call.param("ticket");
    Ok(match call.method.as_str() {
        "serverVersion" => Reply::Text(format!("Costbridge {}", env!("CARGO_PKG_VERSION"))),
        // Any Web Connector version will do: an empty answer lets it go on.
        "clientVersion" => Reply::Text(String::new()),
        "authenticate" => {
            authenticate(
                state,
                client,
                call.param("strUserName"),
                call.param("strPassword"),
            )
            .await?
        }
        "sendRequestXML" => Reply::Text(send_request(state, call).await?),
        "receiveResponseXML" => Reply::Number(receive(state, call).await?),
        "connectionError" => {
            if let Some(s) = session(state, ticket).await? {
                let error = format!(
                    "the Web Connector could not open QuickBooks: {} ({})",
                    call.param("message"),
                    call.param("hresult")
                );
                state
                    .db
                    .qbwc_error(s.company_id, Some(&s.ticket_hash), Some(&error))
                    .await?;
            }
            Reply::Text("done".into())
        }
        "getLastError" => Reply::Text(match session(state, ticket).await? {
            Some(s) => s
                .last_error
                .map_or_else(String::new, |e| format!("Costbridge: {e}")),
            None => ENDED.into(),
        }),
        "closeConnection" => Reply::Text(close(state, ticket).await?),
        other => return Err(OpError::Broken(format!("unknown method '{other}'"))),
    })
}

const ENDED: &str = "Costbridge: this session ended or expired; the Web Connector starts a new one at its next run.";

async fn session(state: &AppState, ticket: &str) -> Result<Option<QbwcSession>, OpError> {
    if ticket.is_empty() {
        return Ok(None);
    }
    let s = state.db.qbwc_session(&password::hash_token(ticket)).await?;
    if let Some(s) = &s {
        tracing::Span::current().record("company", s.company_id);
    }
    Ok(s)
}

/// The longest Web Connector user name read (Costbridge makes them well under this).
const MAX_USER_BYTES: usize = 254;

/// `[ticket, ""]` to go on, `[ticket, "none"]` when there is nothing to do, `["", "nvu"]` for
/// a wrong user name or password (counted by the sign-in throttle, like a person's).
async fn authenticate(
    state: &AppState, client: IpAddr, user: &str, secret: &str,
) -> Result<Reply, OpError> {
    let refused = || Reply::Strings(vec![String::new(), "nvu".into()]);
    // Ours are short (`costbridge-…`); a name of megabytes is refused before it is looked up,
    // counted or written to the log.
    if user.len() > MAX_USER_BYTES {
        tracing::warn!(%client, bytes = user.len(), "QBWC sign-in refused: user name too long");
        return Ok(refused());
    }
    let key = format!("qbwc:{user}");
    let throttle = &state.sign_in;
    // Held until the password is decided (the function's end).
    let _attempt = match throttle.check(&key, client, Instant::now()) {
        Ok(attempt) => attempt,
        Err(locked) => {
            tracing::warn!(%client, user, retry_after_s = locked.retry_after.as_secs(), "QBWC sign-in refused: throttled");
            return Ok(refused());
        }
    };
    let found = state.db.qbwc_credentials(user).await?;
    let Some((company, _)) =
        password::sign_in(found.into_iter().collect(), secret.to_owned()).await
    else {
        throttle.failed(&key, client, Instant::now());
        tracing::warn!(%client, user, "QBWC sign-in failed: wrong user name or password");
        if let Some((company, _)) = state.db.qbwc_credentials(user).await? {
            let zone = crate::ops::company::zone(state, company).await?;
            // Anyone can send a wrong password under the company's user name, so the line
            // says where it came from: the admin can tell their Web Connector from a stranger.
            let error = format!(
                "a sign-in as the Web Connector with a wrong password from {client} at {}; if that is your Web Connector's address, type the password Costbridge showed (or make a new one) in its Password column; if not, someone else tried and was refused",
                zone.show(now())
            );
            state.db.qbwc_error(company, None, Some(&error)).await?;
        }
        return Ok(refused());
    };
    throttle.succeeded(&key, client, Instant::now());
    tracing::Span::current().record("company", company);
    let Some(conn) = connection(state, company)
        .await?
        .filter(|c| c.settings.pulled())
    else {
        let error = "the company's ERP connection is no longer the QuickBooks Web Connector; remove Costbridge from the Web Connector or connect it again";
        state.db.qbwc_error(company, None, Some(error)).await?;
        return Ok(refused());
    };
    let ticket = password::new_token();
    let hash = password::hash_token(&ticket);
    state
        .db
        .start_qbwc_session(company, &hash, now() + TICKET_TTL)
        .await?;
    let s = state
        .db
        .qbwc_session(&hash)
        .await?
        .ok_or(OpError::Store(StoreError::NotFound))?;
    let next = advance(state, &s, &conn).await?;
    state.db.set_qbwc_pending(&hash, next.as_deref()).await?;
    let what = if next.is_some() { "" } else { "none" };
    Ok(Reply::Strings(vec![ticket, what.into()]))
}

/// The request made when the last answer was applied, and what QBWC says about itself.
async fn send_request(state: &AppState, call: &Call) -> Result<String, OpError> {
    let Some(s) = session(state, call.param("ticket")).await? else {
        return Ok(String::new());
    };
    let hcp = call.param("strHCPResponse");
    // The first request of a session carries QuickBooks' HostQuery answer: its product name.
    let version = (!hcp.is_empty()).then(|| {
        let product = qbxml_product(hcp);
        format!(
            "{}qbXML {}.{} {}",
            product.map(|p| format!("{p}, ")).unwrap_or_default(),
            call.param("qbXMLMajorVers"),
            call.param("qbXMLMinorVers"),
            call.param("qbXMLCountry")
        )
        .trim()
        .to_owned()
    });
    let file = Some(call.param("strCompanyFileName")).filter(|f| !f.is_empty());
    state
        .db
        .qbwc_seen(s.company_id, version.as_deref(), file)
        .await?;
    Ok(s.pending.unwrap_or_default())
}

fn qbxml_product(hcp: &str) -> Option<String> {
    let root = costbridge_erp::qbwc::xml::parse(hcp).ok()?;
    let host = root
        .child("QBXMLMsgsRs")?
        .child("HostQueryRs")?
        .child("HostRet")?;
    host.text_of("ProductName").map(str::to_owned)
}

/// Applies QuickBooks' answers and says how far the session is: 100 ends it, -1 makes QBWC
/// ask `getLastError`.
async fn receive(state: &AppState, call: &Call) -> Result<i64, OpError> {
    let Some(s) = session(state, call.param("ticket")).await? else {
        return Ok(-1);
    };
    let company = s.company_id;
    if !call.param("hresult").is_empty() {
        let error = format!(
            "QuickBooks could not process Costbridge's request: {} ({}); the codes stay waiting for the next run",
            call.param("message"),
            call.param("hresult")
        );
        state
            .db
            .qbwc_error(company, Some(&s.ticket_hash), Some(&error))
            .await?;
        return Ok(-1);
    }
    let answers = match qbxml::read_response(call.param("response")) {
        Ok(a) => a,
        Err(e) => {
            let error = format!(
                "Costbridge could not read QuickBooks' answer ({e}); the codes stay waiting for the next run"
            );
            state
                .db
                .qbwc_error(company, Some(&s.ticket_hash), Some(&error))
                .await?;
            return Ok(-1);
        }
    };
    let Some(conn) = connection(state, company)
        .await?
        .filter(|c| c.settings.pulled())
    else {
        return Ok(100);
    };
    apply(state, &s, &conn, answers).await?;
    state
        .db
        .qbwc_error(company, Some(&s.ticket_hash), None)
        .await?;
    let s = state
        .db
        .qbwc_session(&s.ticket_hash)
        .await?
        .ok_or(OpError::Store(StoreError::NotFound))?;
    let next = advance(state, &s, &conn).await?;
    state
        .db
        .set_qbwc_pending(&s.ticket_hash, next.as_deref())
        .await?;
    if next.is_none() {
        return Ok(100);
    }
    let left = state.db.qbwc_remaining(company).await?;
    let total = s.total.max(left).max(1);
    Ok(((total - left) * 100 / total).clamp(0, 99))
}

/// Ends the session with a line for QBWC's log.
async fn close(state: &AppState, ticket: &str) -> Result<String, OpError> {
    let Some(s) = session(state, ticket).await? else {
        return Ok(ENDED.into());
    };
    state.db.end_qbwc_session(&s.ticket_hash).await?;
    let left = state.db.qbwc_remaining(s.company_id).await?;
    Ok(match (s.last_error, left) {
        (Some(e), _) => format!("Costbridge: this run stopped: {e}."),
        (None, 0) => "Costbridge: done. Every exported code has QuickBooks' answer; refused codes are under ERP Integrations > Failed to Export in Costbridge.".into(),
        (None, n) => format!("Costbridge: {n} codes still wait for QuickBooks; they go at the Web Connector's next run."),
    })
}
