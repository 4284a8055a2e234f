//! Prometheus metrics, labelled by route template (never the raw path, which would carry ids).
use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Instant;

/// (method, route template, status) → (count, seconds).
type RequestStats = BTreeMap<(String, String, u16), (u64, f64)>;

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<RequestStats>,
}

impl Metrics {
    pub fn render(&self, extra: &[(&str, &str, f64)]) -> String {
        let mut out = String::from(
            "# HELP costbridge_http_requests_total HTTP requests by route and status.\n# TYPE costbridge_http_requests_total counter\n",
        );
        let reqs = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        for ((method, route, status), (count, _)) in reqs.iter() {
            let _ = writeln!(
                out,
                "costbridge_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {count}"
            );
        }
        out.push_str("# HELP costbridge_http_request_seconds_sum Time spent answering, by route.\n# TYPE costbridge_http_request_seconds_sum counter\n");
        for ((method, route, status), (_, secs)) in reqs.iter() {
            let _ = writeln!(
                out,
                "costbridge_http_request_seconds_sum{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {secs:.6}"
            );
        }
        for (name, help, value) in extra {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
        out
    }
}

pub async fn track(State(m): State<std::sync::Arc<Metrics>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let method = method_label(req.method()).to_owned();
    let start = Instant::now();
    let res = next.run(req).await;
    let key = (method, route, res.status().as_u16());
    let mut reqs = m.requests.lock().unwrap_or_else(|p| p.into_inner());
    let e = reqs.entry(key).or_default();
    e.0 += 1;
    e.1 += start.elapsed().as_secs_f64();
    res
}

/// The method as a label: anyone can send an invented method, and each would otherwise add a
/// series to every scrape from then on.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}
