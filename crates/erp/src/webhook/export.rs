//! One export batch over the webhook: the signed POST, and what the receiver's answer means for
//! each line (`read_answer`, pure, so every kind of answer is tested without a server).
use std::collections::HashMap;

use reqwest::StatusCode;

use super::sign::idempotency_key;
use super::wire::{Batch, OriginId, Reply, ReplyLine};
use super::{MAX_ANSWER_BYTES, Webhook, status_text};
use crate::{ConnectorError, ExportContext, ExportLine, LineResult, fit_description};

/// A receiver's per-line message is kept up to this many characters.
const MESSAGE_CHARS: usize = 1000;

pub(super) async fn export(
    hook: &Webhook, ctx: &ExportContext, lines: &[ExportLine<'_>],
) -> Result<Vec<(i64, LineResult)>, ConnectorError> {
    if lines.is_empty() {
        return Ok(Vec::new());
    }
    let body = serde_json::to_vec(&Batch::of(ctx, lines)).map_err(|e| {
        ConnectorError::Unavailable(format!("could not encode the webhook batch: {e}"))
    })?;
    let key = idempotency_key(ctx.job_id, lines);
    let url = hook.shown_url();
    tracing::debug!(
        job = ctx.job_id,
        codes = lines.len(),
        idempotency_key = %key,
        url = %url,
        "posting a batch to the webhook"
    );
    let answer = hook
        .post(body, Some(&key))
        .await
        .map_err(ConnectorError::Unavailable)?;
    tracing::debug!(
        job = ctx.job_id,
        status = answer.status.as_u16(),
        "webhook answered"
    );
    read_answer(
        ctx,
        lines,
        &url,
        answer.status,
        &answer.body,
        answer.complete,
    )
}

/// What the receiver's answer means: `Err` when the batch is to be sent again later (5xx, 408,
/// 429), else one result per line, in the order of `lines`. `complete` is false when the body
/// was cut at `MAX_ANSWER_BYTES`; `url` names the receiver in messages.
fn read_answer(
    ctx: &ExportContext, lines: &[ExportLine<'_>], url: &str, status: StatusCode, body: &[u8],
    complete: bool,
) -> Result<Vec<(i64, LineResult)>, ConnectorError> {
    if status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
    {
        return Err(ConnectorError::Unavailable(format!(
            "the webhook at {url} answered HTTP {}",
            status_text(status),
        )));
    }
    if !status.is_success() {
        let message = if status.is_redirection() {
            format!(
                "the receiver refused the batch (HTTP {}, a redirect, which is not followed: set the connection's URL to the final address)",
                status_text(status),
            )
        } else {
            format!(
                "the receiver refused the batch (HTTP {})",
                status_text(status),
            )
        };
        return Ok(all_failed(lines, &message));
    }

    // What the receiver answered stays out of the message (it is a foreign service's text);
    // the log has the parse error for whoever runs the receiver.
    let reply = if complete {
        serde_json::from_slice::<Reply>(body).map_err(|e| {
            tracing::warn!(job = ctx.job_id, error = %e, "the webhook's answer is malformed");
            "not JSON of that shape".to_owned()
        })
    } else {
        Err(format!(
            "the answer is larger than {} MiB",
            MAX_ANSWER_BYTES >> 20
        ))
    };
    match reply {
        Ok(r) => Ok(results(ctx, lines, r)),
        Err(why) => {
            let message = format!(
                "the receiver answered HTTP {} but not with {{\"results\": [...]}} ({why})",
                status.as_u16(),
            );
            Ok(all_failed(lines, &message))
        }
    }
}

/// The receiver's word on each line of the batch; a line it did not mention failed.
fn results(ctx: &ExportContext, lines: &[ExportLine<'_>], reply: Reply) -> Vec<(i64, LineResult)> {
    let mut reported: HashMap<i64, LineResult> = HashMap::with_capacity(reply.results.len());
    for r in reply.results {
        let (item_id, result) = match r {
            ReplyLine::Synced { item_id, origin_id } => {
                let origin_id = match origin_id {
                    OriginId::Text(t) => t.trim().to_owned(),
                    OriginId::Number(n) => n.to_string(),
                };
                let result = if origin_id.is_empty() {
                    LineResult::Failed {
                        message:
                            "the receiver reported this code synced but gave an empty origin_id"
                                .into(),
                    }
                } else {
                    LineResult::Synced { origin_id }
                };
                (item_id, result)
            }
            ReplyLine::Failed { item_id, message } => {
                let message = message
                    .map(|m| fit_description(m.trim(), Some(MESSAGE_CHARS)).to_owned())
                    .filter(|m| !m.is_empty())
                    .unwrap_or_else(|| "the receiver reported a failure without a message".into());
                (item_id, LineResult::Failed { message })
            }
        };
        // The first word on a line counts; a repeat is the receiver's mistake.
        reported.entry(item_id).or_insert(result);
    }
    let results: Vec<(i64, LineResult)> = lines
        .iter()
        .map(|l| {
            let result = reported
                .remove(&l.item_id)
                .unwrap_or_else(|| LineResult::Failed {
                    message: "the receiver did not report on this code in its answer".into(),
                });
            (l.item_id, result)
        })
        .collect();
    if !reported.is_empty() {
        tracing::warn!(
            job = ctx.job_id,
            unknown = reported.len(),
            "the webhook reported on codes that were not in the batch; ignored"
        );
    }
    results
}

fn all_failed(lines: &[ExportLine<'_>], message: &str) -> Vec<(i64, LineResult)> {
    lines
        .iter()
        .map(|l| {
            (
                l.item_id,
                LineResult::Failed {
                    message: message.to_owned(),
                },
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{GlKind, Previous};
    use serde_json::json;

    const URL: &str = "https://erp.example/hook";

    fn ctx() -> ExportContext {
        ExportContext {
            job_id: 7,
            delimiter: '-',
            max_description: Some(4),
        }
    }

    fn lines() -> Vec<ExportLine<'static>> {
        [(1, "01"), (2, "02"), (3, "03")]
            .map(|(id, full)| crate::test_line(id, full))
            .into()
    }

    fn read(status: u16, body: &str) -> Result<Vec<(i64, LineResult)>, ConnectorError> {
        let status = StatusCode::from_u16(status).unwrap();
        read_answer(&ctx(), &lines(), URL, status, body.as_bytes(), true)
    }

    fn failed(m: &str) -> LineResult {
        LineResult::Failed { message: m.into() }
    }

    #[test]
    fn the_batch_carries_each_line_with_its_accounts_and_previous_values() {
        let mut l = lines().remove(0);
        l.parent_full_code = Some("00");
        l.previous = Some(Previous {
            code: "9",
            full_code: "00-9",
            description: "Old",
            active: false,
        });
        l.income = Some(crate::test_account("4000", "Income", GlKind::Income));
        let lines = [l];
        let body = serde_json::to_value(Batch::of(&ctx(), &lines)).unwrap();
        assert_eq!(
            body,
            json!({"event": "cost_codes.export", "job_id": 7, "codes": [{
                "item_id": 1, "code": "01", "full_code": "01", "description": "Desc",
                "active": true, "parent_full_code": "00", "origin_id": null,
                "previous": {"code": "9", "full_code": "00-9", "description": "Old", "active": false},
                "gl_income_account": {"code": "4000", "name": "Income"},
                "gl_expense_account": null}]})
        );
    }

    #[test]
    fn each_line_gets_the_receivers_word_or_fails_when_not_mentioned() {
        let out = read(
            200,
            r#"{"results": [
                {"item_id": 1, "status": "synced", "origin_id": 501},
                {"item_id": 1, "status": "failed", "message": "a repeat does not count"},
                {"item_id": 2, "status": "failed", "message": "  no such account  "},
                {"item_id": 99, "status": "synced", "origin_id": "x"}]}"#,
        )
        .unwrap();
        assert_eq!(
            out,
            vec![
                (
                    1,
                    LineResult::Synced {
                        origin_id: "501".into()
                    }
                ),
                (2, failed("no such account")),
                (
                    3,
                    failed("the receiver did not report on this code in its answer")
                ),
            ]
        );
        let out = read(
            200,
            r#"{"results": [{"item_id": 1, "status": "synced", "origin_id": " "},
                {"item_id": 2, "status": "failed"}]}"#,
        )
        .unwrap();
        assert_eq!(
            out[0].1,
            failed("the receiver reported this code synced but gave an empty origin_id")
        );
        assert_eq!(
            out[1].1,
            failed("the receiver reported a failure without a message")
        );
    }

    #[test]
    fn later_for_5xx_408_and_429_a_refusal_for_other_statuses() {
        for status in [500, 503, 408, 429] {
            match read(status, "busy") {
                Err(ConnectorError::Unavailable(m)) => {
                    assert!(
                        m.starts_with(&format!("the webhook at {URL} answered HTTP {status}")),
                        "{m}"
                    );
                    // A foreign service's text is never shown.
                    assert!(!m.contains("busy"), "{m}");
                }
                other => panic!("{status}: {other:?}"),
            }
        }
        let out = read(400, "").unwrap();
        assert!(
            out.iter().all(|(_, r)| *r
                == failed("the receiver refused the batch (HTTP 400 Bad Request)"))
        );
        let out = read(302, "moved").unwrap();
        let LineResult::Failed { message } = &out[0].1 else {
            panic!()
        };
        assert!(
            message.contains("a redirect, which is not followed"),
            "{message}"
        );
    }

    #[test]
    fn a_malformed_or_cut_answer_fails_every_line_without_quoting_it() {
        let out = read(200, "<html>ok</html>").unwrap();
        assert_eq!(out.len(), 3);
        let LineResult::Failed { message } = &out[2].1 else {
            panic!()
        };
        assert!(
            message.starts_with("the receiver answered HTTP 200 but not with {\"results\": [...]}")
                && message.ends_with("(not JSON of that shape)")
                && !message.contains("html"),
            "{message}"
        );
        let cut = read_answer(&ctx(), &lines(), URL, StatusCode::OK, b"{}", false).unwrap();
        let LineResult::Failed { message } = &cut[0].1 else {
            panic!()
        };
        assert!(
            message.contains("(the answer is larger than 16 MiB)"),
            "{message}"
        );
    }
}
