//! The SMTP transport from `[mail]`: host, port, TLS mode, credentials, timeout.
use crate::config::{MailSettings, TlsMode};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, Tokio1Executor};

/// `None` when no host is configured.
pub fn transport(s: &MailSettings) -> anyhow::Result<Option<AsyncSmtpTransport<Tokio1Executor>>> {
    let Some(host) = s.host.as_deref().map(str::trim).filter(|h| !h.is_empty()) else {
        return Ok(None);
    };
    type T = AsyncSmtpTransport<Tokio1Executor>;
    let (builder, default_port) = match s.tls {
        // Plain text is the operator's explicit choice (a local relay), never a fallback.
        TlsMode::None => (T::builder_dangerous(host), 25),
        TlsMode::Starttls => (T::starttls_relay(host)?, 587),
        TlsMode::Tls => (T::relay(host)?, 465),
    };
    let mut builder =
        builder
            .port(s.port.unwrap_or(default_port))
            .timeout(Some(std::time::Duration::from_secs(
                s.timeout_seconds.max(1),
            )));
    if let Some(user) = &s.username {
        let password = s.password.as_ref().map(|p| p.expose().to_owned());
        builder = builder.credentials(Credentials::new(user.clone(), password.unwrap_or_default()));
    }
    Ok(Some(builder.build()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_tls_mode_builds_and_no_host_means_off() {
        let mut s = MailSettings {
            host: Some("smtp.example.com".into()),
            username: Some("costbridge".into()),
            ..MailSettings::default()
        };
        for tls in [TlsMode::None, TlsMode::Starttls, TlsMode::Tls] {
            s.tls = tls;
            assert!(transport(&s).unwrap().is_some(), "{tls:?}");
        }
        s.host = Some("  ".into());
        assert!(transport(&s).unwrap().is_none());
    }
}
