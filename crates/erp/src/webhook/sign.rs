//! The signature and the idempotency key of a webhook request: how Costbridge signs, and how a
//! receiver checks (`verify`).
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::{ExportLine, fit_description};

/// How far (seconds) a signature's timestamp may be from the receiver's clock.
const MAX_SKEW_SECS: u64 = 300;

type HmacSha256 = Hmac<Sha256>;

/// The header value that signs `body` at `unix_time`:
/// `t=<unix_time>,v1=<hex HMAC-SHA256 of "<unix_time>.<body>" keyed with secret>`.
pub fn sign(secret: &str, unix_time: i64, body: &[u8]) -> String {
    let digest = mac(secret, unix_time, body).finalize().into_bytes();
    format!("t={unix_time},v1={}", hex::encode(digest))
}

/// Checks a `X-Costbridge-Signature` header against the body as received, for receivers.
/// Refuses a timestamp more than 300 s away from `now_unix` (a replayed request, or clocks out
/// of step). The comparison is constant-time. Several `v1=` values (a secret being rotated) pass
/// if any one matches; unknown schemes are ignored.
pub fn verify(secret: &str, header: &str, body: &[u8], now_unix: i64) -> Result<(), String> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((key, value)) = part.split_once('=') else {
            return Err(format!(
                "the signature header is malformed: expected t=<unix time>,v1=<hex>, found '{}'",
                fit_description(part, Some(40))
            ));
        };
        match key.trim() {
            "t" => {
                let value = value.trim();
                timestamp = Some(value.parse::<i64>().map_err(|_| {
                    format!(
                        "the signature timestamp '{}' is not a Unix time",
                        fit_description(value, Some(40))
                    )
                })?);
            }
            "v1" => signatures.push(value.trim()),
            _ => {}
        }
    }
    let Some(timestamp) = timestamp else {
        return Err("the signature header has no timestamp (t=<unix time>)".into());
    };
    if signatures.is_empty() {
        return Err("the signature header has no signature (v1=<hex>)".into());
    }
    let skew = now_unix.abs_diff(timestamp);
    if skew > MAX_SKEW_SECS {
        return Err(if timestamp < now_unix {
            format!(
                "the signature is {skew} s old; at most {MAX_SKEW_SECS} s is accepted (a replayed request, or clocks out of step)"
            )
        } else {
            format!(
                "the signature is dated {skew} s in the future; at most {MAX_SKEW_SECS} s is accepted (clocks out of step)"
            )
        });
    }
    let matches = signatures.iter().any(|s| {
        hex::decode(s).is_ok_and(|bytes| mac(secret, timestamp, body).verify_slice(&bytes).is_ok())
    });
    if matches {
        Ok(())
    } else {
        Err(
            "the signature does not match: the secret is wrong, or the body was changed after signing"
                .into(),
        )
    }
}

fn mac(secret: &str, unix_time: i64, body: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes())
        .expect("HMAC-SHA256 takes a key of any length");
    mac.update(unix_time.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// `costbridge-<job>-<first 16 hex of SHA-256 of the comma-joined item ids>`: the same batch of
/// the same job always gets the same key. A batch redone after a restart can hold other items
/// (those recorded meanwhile leave it) and so another key: receivers also dedupe by item id
/// within the job (README, Webhook).
pub(super) fn idempotency_key(job_id: i64, lines: &[ExportLine<'_>]) -> String {
    let ids: Vec<String> = lines.iter().map(|l| l.item_id.to_string()).collect();
    let digest = hex::encode(Sha256::digest(ids.join(",").as_bytes()));
    format!("costbridge-{job_id}-{}", &digest[..16])
}
