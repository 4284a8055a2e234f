//! Sign-in throttling (README, Security). Only failures count, on three keys: the client
//! address (one client spraying many emails), the account from strangers (many clients guessing
//! one account), and the account from this client. Past a free allowance each key is locked
//! with a doubling backoff. A client that signed in to an account before (its usual client) is
//! not held back by strangers' failures on that account, so nobody can lock a known user out
//! from afar. State is kept in memory, per instance: a restart forgets it.
use crate::error::{ApiError, ApiResult};
use crate::ops::users::SignedIn;
use crate::ops::{OpError, OpResult};
use crate::password;
use crate::state::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName};
use serde_json::json;
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The failure on each key that starts its first lock.
const CLIENT_FREE: u32 = 20;
const ACCOUNT_FREE: u32 = 10;
const PAIR_FREE: u32 = 5;
/// The first lock; each further failure doubles it, up to `MAX_LOCK`.
const FIRST_LOCK: Duration = Duration::from_secs(30);
const MAX_LOCK: Duration = Duration::from_secs(15 * 60);
/// A key with no failure for this long starts afresh.
const FORGET: Duration = Duration::from_secs(60 * 60);
/// How long, and how many, clients of an account are remembered as usual.
const USUAL_FOR: Duration = Duration::from_secs(30 * 24 * 60 * 60);
const USUAL_MAX: usize = 10;

/// Which count a lock comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// This client address, whatever the email.
    Client,
    /// This account, from clients that are not its usual ones.
    Account,
    /// This account from this client.
    AccountFromClient,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Client => "client",
            Scope::Account => "account",
            Scope::AccountFromClient => "account_from_client",
        }
    }
}

/// A refusal: which lock, how long is left, and whether this is the first refusal of that lock
/// (audited; later ones in the same lock only logged, so a flood cannot fill the audit log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Locked {
    pub scope: Scope,
    pub retry_after: Duration,
    pub first: bool,
}

/// What a failure did: the counts, and the locks it started (with their length).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Failure {
    pub account_failures: u32,
    pub client_failures: u32,
    pub locks: Vec<(Scope, Duration)>,
}

#[derive(Default)]
struct Count {
    failures: u32,
    last: Option<Instant>,
    locked_until: Option<Instant>,
    refusal_told: bool,
    /// Attempts checked and not yet decided ([`Attempt`]).
    pending: u32,
}

impl Count {
    fn fresh(&mut self, now: Instant) {
        if self.last.is_some_and(|l| now.duration_since(l) >= FORGET) {
            self.forget();
        }
    }

    /// Forgets the failures and any lock; the attempts still undecided stay counted (their
    /// [`Attempt`]s give them back).
    fn forget(&mut self) {
        *self = Count {
            pending: self.pending,
            ..Count::default()
        };
    }

    fn locked(&mut self, now: Instant) -> Option<(Duration, bool)> {
        let until = self.locked_until.filter(|u| *u > now)?;
        let first = !self.refusal_told;
        self.refusal_told = true;
        Some((until - now, first))
    }

    /// Counts a failure; the lock it starts, if past `free`.
    fn fail(&mut self, now: Instant, free: u32) -> Option<Duration> {
        self.failures += 1;
        self.last = Some(now);
        let over = self.failures.checked_sub(free)?;
        let lock = FIRST_LOCK
            .saturating_mul(2u32.saturating_pow(over.min(16)))
            .min(MAX_LOCK);
        self.locked_until = Some(now + lock);
        self.refusal_told = false;
        Some(lock)
    }
}

#[derive(Default)]
struct State {
    counts: HashMap<String, Count>,
    usual: HashMap<String, VecDeque<(IpAddr, Instant)>>,
    swept: Option<Instant>,
}

#[derive(Default)]
pub struct SignInThrottle {
    state: Mutex<State>,
    /// `[server] client_ip_header`: the header a trusted reverse proxy puts the client's address
    /// in (its last entry counts); absent, the connection's peer address is the client.
    client_ip_header: Option<HeaderName>,
}

/// The longest account name a key keeps. Sign-in names arrive before anyone is known (a
/// Web Connector's user name, an email, a client id) and the counts stay for an hour: a
/// megabyte name sent again and again from new addresses held its copies in memory. No real
/// name is this long (emails stop at 254), so a longer one shares its key only with names as
/// absurd.
const MAX_ACCOUNT_CHARS: usize = 320;

/// The account part of the keys: trimmed, lowercased, at most [`MAX_ACCOUNT_CHARS`].
fn account(email: &str) -> String {
    email
        .trim()
        .chars()
        .take(MAX_ACCOUNT_CHARS)
        .collect::<String>()
        .to_lowercase()
}

fn keys(email: &str, client: IpAddr) -> [(Scope, String, u32); 3] {
    let email = account(email);
    [
        (Scope::Client, format!("c {client}"), CLIENT_FREE),
        (
            Scope::AccountFromClient,
            format!("p {client} {email}"),
            PAIR_FREE,
        ),
        (Scope::Account, format!("a {email}"), ACCOUNT_FREE),
    ]
}

impl State {
    fn is_usual(&self, email: &str, client: IpAddr, now: Instant) -> bool {
        self.usual.get(&account(email)).is_some_and(|v| {
            v.iter()
                .any(|(ip, at)| *ip == client && now.duration_since(*at) < USUAL_FOR)
        })
    }

    fn sweep(&mut self, now: Instant) {
        if self
            .swept
            .is_some_and(|s| now.duration_since(s) < Duration::from_secs(60))
        {
            return;
        }
        self.swept = Some(now);
        self.counts.retain(|_, c| {
            c.last.is_some_and(|l| now.duration_since(l) < FORGET)
                || c.locked_until.is_some_and(|u| u > now)
                || c.pending > 0
        });
        self.usual.retain(|_, v| {
            v.retain(|(_, at)| now.duration_since(*at) < USUAL_FOR);
            !v.is_empty()
        });
    }
}

impl SignInThrottle {
    pub fn new(client_ip_header: Option<HeaderName>) -> SignInThrottle {
        SignInThrottle {
            client_ip_header,
            ..SignInThrottle::default()
        }
    }

    /// The address a request comes from, as this server is set up to see it. The header's
    /// last address may carry a port (`203.0.113.5:41234`, `[2001:db8::1]:443`) or brackets,
    /// as some proxies write it: read as the proxy's own address instead, every client shared
    /// one sign-in throttle, and one person's wrong passwords locked everyone out.
    pub fn client(&self, headers: &HeaderMap, peer: Option<IpAddr>) -> IpAddr {
        let forwarded = self.client_ip_header.as_ref().and_then(|h| {
            let value = headers.get_all(h).iter().next_back()?.to_str().ok()?;
            let last = value.rsplit(',').next()?.trim();
            last.parse()
                .or_else(|_| last.parse::<SocketAddr>().map(|a| a.ip()))
                .or_else(|_| last.trim_start_matches('[').trim_end_matches(']').parse())
                .ok()
        });
        forwarded
            .or(peer)
            .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `client` may try a password for `email` now. The attempt counts against each
    /// key's free allowance until it is dropped, as if it had failed: only failures count,
    /// and 60 guesses sent at once were all checked before the first of them had failed.
    /// Hold it until the password is decided.
    pub fn check(&self, email: &str, client: IpAddr, now: Instant) -> Result<Attempt<'_>, Locked> {
        let mut st = self.state();
        st.sweep(now);
        let usual = st.is_usual(email, client, now);
        let applies = keys(email, client)
            .into_iter()
            .filter(|(scope, ..)| !(*scope == Scope::Account && usual))
            .collect::<Vec<_>>();
        for (scope, key, _) in &applies {
            let Some(count) = st.counts.get_mut(key) else {
                continue;
            };
            count.fresh(now);
            if let Some((retry_after, first)) = count.locked(now) {
                return Err(Locked {
                    scope: *scope,
                    retry_after,
                    first,
                });
            }
        }
        for (scope, key, free) in &applies {
            if st
                .counts
                .get(key)
                .is_some_and(|c| c.pending > 0 && c.failures + c.pending >= *free)
            {
                // Enough attempts are undecided to reach the lock: wait for them. (Past a
                // lock, one attempt at a time.)
                return Err(Locked {
                    scope: *scope,
                    retry_after: Duration::from_secs(1),
                    first: false,
                });
            }
        }
        let keys = applies
            .into_iter()
            .map(|(_, key, _)| key)
            .collect::<Vec<_>>();
        for key in &keys {
            st.counts.entry(key.clone()).or_default().pending += 1;
        }
        Ok(Attempt {
            throttle: self,
            keys,
        })
    }

    /// A wrong password (or unknown email) from `client`.
    pub fn failed(&self, email: &str, client: IpAddr, now: Instant) -> Failure {
        let mut st = self.state();
        let usual = st.is_usual(email, client, now);
        let mut out = Failure::default();
        for (scope, key, free) in keys(email, client) {
            // A usual client's failures are its own business, not a sign of an attack.
            if scope == Scope::Account && usual {
                continue;
            }
            let count = st.counts.entry(key).or_default();
            count.fresh(now);
            if let Some(lock) = count.fail(now, free) {
                out.locks.push((scope, lock));
            }
            match scope {
                Scope::Client => out.client_failures = count.failures,
                Scope::AccountFromClient => out.account_failures = count.failures,
                Scope::Account => {}
            }
        }
        out
    }

    /// A correct password: `client` becomes (or stays) a usual client of the account, and its
    /// own failures on it are forgotten. The strangers' count is left to run out.
    pub fn succeeded(&self, email: &str, client: IpAddr, now: Instant) -> bool {
        let mut st = self.state();
        let was_usual = st.is_usual(email, client, now);
        let [_, (_, pair, _), _] = keys(email, client);
        if let Some(c) = st.counts.get_mut(&pair) {
            c.forget();
        }
        let list = st.usual.entry(account(email)).or_default();
        list.retain(|(ip, _)| *ip != client);
        list.push_back((client, now));
        while list.len() > USUAL_MAX {
            list.pop_front();
        }
        was_usual
    }
}

/// A sign-in attempt between [`SignInThrottle::check`] and its outcome.
pub struct Attempt<'t> {
    throttle: &'t SignInThrottle,
    keys: Vec<String>,
}

impl std::fmt::Debug for Attempt<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attempt").field("keys", &self.keys).finish()
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        let mut st = self.throttle.state();
        for key in &self.keys {
            if let Some(c) = st.counts.get_mut(key) {
                c.pending = c.pending.saturating_sub(1);
            }
        }
    }
}

/// The client address of a request (see [`SignInThrottle::client`]).
pub struct ClientAddr(pub IpAddr);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        Ok(ClientAddr(state.sign_in.client(&parts.headers, peer)))
    }
}

/// Checks an email and password from `client` under the throttle, and audits the decision on
/// the account(s) of that email; shared by API tokens and the web sign-in.
pub async fn sign_in(
    state: &AppState, email: &str, password: String, client: IpAddr,
) -> OpResult<SignedIn> {
    let t = &state.sign_in;
    let at = client.to_string();
    // Held until the password is decided (the function's end).
    let _attempt = match t.check(email, client, Instant::now()) {
        Ok(attempt) => attempt,
        Err(locked) => {
            let secs = locked.retry_after.as_secs().max(1);
            tracing::warn!(client = %at, scope = locked.scope.as_str(), "sign-in refused: throttled");
            if locked.first {
                let after = json!({"client": at, "scope": locked.scope.as_str(), "retry_after_seconds": secs});
                state
                    .db
                    .audit_sign_in(email, None, "user.sign_in_refused", after)
                    .await?;
            }
            return Err(OpError::RateLimited(secs));
        }
    };
    let candidates = state.db.users_for_login(email).await?;
    if let Some((user, password_hash)) = password::sign_in(candidates, password).await {
        let usual = t.succeeded(email, client, Instant::now());
        let after = json!({"client": at, "usual_client": usual});
        state
            .db
            .audit_sign_in(email, Some(user.id), "user.signed_in", after)
            .await?;
        return Ok(SignedIn {
            user,
            password_hash,
        });
    }
    let f = t.failed(email, client, Instant::now());
    tracing::warn!(client = %at, failures = f.account_failures, "sign-in failed");
    let after =
        json!({"client": at, "failures": f.account_failures, "client_failures": f.client_failures});
    state
        .db
        .audit_sign_in(email, None, "user.sign_in_failed", after)
        .await?;
    for (scope, lock) in f.locks {
        let after = json!({"client": at, "scope": scope.as_str(), "seconds": lock.as_secs()});
        state
            .db
            .audit_sign_in(email, None, "user.sign_in_locked", after)
            .await?;
    }
    Err(OpError::BadCredentials)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, n])
    }

    /// Proxies write the client's address with a port or in brackets too: each is read as the
    /// client, not as the proxy (whose one address every client would then share).
    #[test]
    fn the_client_address_is_read_with_a_port_or_brackets() {
        let t = SignInThrottle::new(Some(HeaderName::from_static("x-forwarded-for")));
        let proxy = Some(ip(9));
        for (value, client) in [
            ("203.0.113.5", "203.0.113.5"),
            ("10.1.1.1, 203.0.113.5:41234", "203.0.113.5"),
            ("[2001:db8::1]:443", "2001:db8::1"),
            ("[2001:db8::1]", "2001:db8::1"),
            ("2001:db8::1", "2001:db8::1"),
            ("not an address", "10.0.0.9"),
        ] {
            let mut headers = HeaderMap::new();
            headers.insert("x-forwarded-for", value.parse().unwrap());
            assert_eq!(t.client(&headers, proxy).to_string(), client, "{value}");
        }
        assert_eq!(t.client(&HeaderMap::new(), proxy), ip(9));
    }

    #[test]
    fn a_megabyte_name_keeps_keys_of_a_names_size() {
        let t = SignInThrottle::default();
        let now = Instant::now();
        let huge = "A".repeat(1 << 20);
        drop(t.check(&huge, ip(1), now));
        t.failed(&huge, ip(1), now);
        let bytes: usize = t.state().counts.keys().map(String::len).sum();
        assert!(bytes < 1024, "{bytes} bytes of keys");
        // Still one account, counted as such.
        assert_eq!(
            t.state().counts[&format!("a {}", "a".repeat(320))].failures,
            1
        );
    }

    #[test]
    fn failures_lock_with_a_doubling_backoff_and_successes_do_not_count() {
        let t = SignInThrottle::default();
        let now = Instant::now();
        for _ in 0..50 {
            assert!(t.check("a@x.example", ip(1), now).is_ok());
            t.succeeded("a@x.example", ip(1), now);
        }
        for i in 1..PAIR_FREE {
            assert!(t.failed("b@x.example", ip(1), now).locks.is_empty(), "{i}");
        }
        let f = t.failed("b@x.example", ip(1), now);
        assert_eq!(f.locks, vec![(Scope::AccountFromClient, FIRST_LOCK)]);
        let locked = t.check("B@x.example", ip(1), now).unwrap_err();
        assert_eq!(
            (locked.scope, locked.retry_after, locked.first),
            (Scope::AccountFromClient, FIRST_LOCK, true)
        );
        assert!(!t.check("b@x.example", ip(1), now).unwrap_err().first);
        // Another client is not held back by this one's failures.
        assert!(t.check("b@x.example", ip(2), now).is_ok());
        let later = now + FIRST_LOCK;
        assert!(t.check("b@x.example", ip(1), later).is_ok());
        let f = t.failed("b@x.example", ip(1), later);
        assert_eq!(f.locks, vec![(Scope::AccountFromClient, FIRST_LOCK * 2)]);
        // An hour without failures and the count starts afresh.
        let much_later = later + FORGET;
        assert!(t.check("b@x.example", ip(1), much_later).is_ok());
        assert!(t.failed("b@x.example", ip(1), much_later).locks.is_empty());
    }

    #[test]
    fn strangers_do_not_lock_out_the_usual_client() {
        let t = SignInThrottle::default();
        let now = Instant::now();
        assert!(!t.succeeded("a@x.example", ip(1), now));
        for n in 0..ACCOUNT_FREE {
            t.failed("a@x.example", ip(100 + (n % 3) as u8), now);
        }
        let locked = t.check("a@x.example", ip(50), now).unwrap_err();
        assert_eq!(locked.scope, Scope::Account);
        assert!(t.check("a@x.example", ip(1), now).is_ok());
        assert!(t.succeeded("a@x.example", ip(1), now));
        // The usual client's own failures still count against itself.
        for _ in 0..PAIR_FREE {
            t.failed("a@x.example", ip(1), now);
        }
        assert_eq!(
            t.check("a@x.example", ip(1), now).unwrap_err().scope,
            Scope::AccountFromClient
        );
    }

    #[test]
    fn one_client_spraying_emails_is_locked() {
        let t = SignInThrottle::default();
        let now = Instant::now();
        for n in 0..CLIENT_FREE {
            t.failed(&format!("u{n}@x.example"), ip(7), now);
        }
        let locked = t.check("someone@x.example", ip(7), now).unwrap_err();
        assert_eq!(
            (locked.scope, locked.retry_after),
            (Scope::Client, FIRST_LOCK)
        );
        assert!(t.check("someone@x.example", ip(8), now).is_ok());
    }

    #[test]
    fn guesses_sent_at_once_count_before_they_fail() {
        let t = SignInThrottle::default();
        let now = Instant::now();
        // As many undecided attempts as the pair's allowance, then the next waits.
        let held: Vec<_> = (0..PAIR_FREE)
            .map(|_| {
                t.check("a@x.example", ip(1), now)
                    .expect("within the allowance")
            })
            .collect();
        let busy = t.check("a@x.example", ip(1), now).unwrap_err();
        assert_eq!(
            (busy.scope, busy.retry_after, busy.first),
            (Scope::AccountFromClient, Duration::from_secs(1), false)
        );
        assert!(
            t.check("a@x.example", ip(2), now).is_ok(),
            "another client's own count"
        );
        // Decided wrong, they lock the pair as one at a time would have.
        for _ in &held {
            t.failed("a@x.example", ip(1), now);
        }
        drop(held);
        let locked = t.check("a@x.example", ip(1), now).unwrap_err();
        assert_eq!(
            (locked.scope, locked.retry_after),
            (Scope::AccountFromClient, FIRST_LOCK)
        );
        // An attempt that ends without an outcome (an error) gives its place back.
        let t = SignInThrottle::default();
        for _ in 0..3 * PAIR_FREE {
            drop(t.check("b@x.example", ip(1), now).expect("given back"));
        }
    }
}
