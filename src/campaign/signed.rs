//! Signed JSON POSTs, as the approval webhook and the `webhook` connector send them: the body
//! with `X-Campaignd-Timestamp` (Unix seconds) and `X-Campaignd-Signature: sha256=<hex>`, the
//! HMAC-SHA256 of `<timestamp>.<body>` keyed by a shared secret, so a receiver can check who sent
//! it and refuse a replay. https goes through rustls.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// `sha256=<hex>` of HMAC-SHA256 keyed by `secret` over `<timestamp>.<body>`.
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> Result<String, String> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret)
        .map_err(|e| format!("the secret cannot key HMAC-SHA256: {e}"))?;
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("sha256={hex}"))
}

/// POSTs `body` to `url`, signed with `secret` at `timestamp`, with `headers` besides; `Ok` on a
/// 2xx answer within `timeout_secs`, else why not.
pub async fn post(
    url: &str,
    secret: &str,
    timeout_secs: u64,
    timestamp: i64,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
) -> Result<(), String> {
    let signed = signature(secret.as_bytes(), timestamp, &body)?;
    let target = url.to_owned();
    let sent = tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(timeout_secs)))
            .build()
            .into();
        let mut request = agent
            .post(&target)
            .header("Content-Type", "application/json")
            .header("X-Campaignd-Timestamp", timestamp.to_string())
            .header("X-Campaignd-Signature", &signed);
        for (name, value) in &headers {
            request = request.header(*name, value);
        }
        request.send(&body[..]).map(|r| r.status())
    })
    .await
    .map_err(|e| format!("the delivery task stopped: {e}"))?;
    match sent {
        Ok(status) if status.is_success() => Ok(()),
        Ok(status) => Err(format!("{url} answered {status}")),
        Err(e) => Err(format!("{url}: {e}")),
    }
}
