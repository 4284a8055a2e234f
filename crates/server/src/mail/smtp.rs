//! The SMTP transport from `[mail]`: host, port, TLS mode, credentials, timeout.
use crate::config::{MailSettings, TlsMode};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, Tokio1Executor};

/// The configured host and the port Costbridge connects to (the usual one for `tls` unless
/// `port` is set); `None` when no host is configured.
pub fn address(s: &MailSettings) -> Option<(&str, u16)> {
    let host = s.host.as_deref().map(str::trim).filter(|h| !h.is_empty())?;
    let default_port = match s.tls {
        TlsMode::None => 25,
        TlsMode::Starttls => 587,
        TlsMode::Tls => 465,
    };
    Some((host, s.port.unwrap_or(default_port)))
}

/// `None` when no host is configured.
pub fn transport(s: &MailSettings) -> anyhow::Result<Option<AsyncSmtpTransport<Tokio1Executor>>> {
    let Some((host, port)) = address(s) else {
        return Ok(None);
    };
    if host.contains(':') && host.parse::<std::net::IpAddr>().is_err() {
        anyhow::bail!(
            "[mail] host = '{host}' holds a port: give the name alone and the port as \
             [mail] port"
        );
    }
    type T = AsyncSmtpTransport<Tokio1Executor>;
    let builder = match s.tls {
        // Plain text is the operator's explicit choice (a local relay), never a fallback.
        TlsMode::None => T::builder_dangerous(host),
        TlsMode::Starttls => T::starttls_relay(host).map_err(|e| refused_tls_name(host, e))?,
        TlsMode::Tls => T::relay(host).map_err(|e| refused_tls_name(host, e))?,
    };
    let mut builder = builder
        .port(port)
        .timeout(Some(std::time::Duration::from_secs(
            s.timeout_seconds.max(1),
        )));
    if let Some(user) = &s.username {
        let password = s.password.as_ref().map(|p| p.expose().to_owned());
        builder = builder.credentials(Credentials::new(user.clone(), password.unwrap_or_default()));
    }
    Ok(Some(builder.build()))
}

fn refused_tls_name(host: &str, e: lettre::transport::smtp::Error) -> anyhow::Error {
    anyhow::anyhow!("[mail] host = '{host}' cannot be checked against a TLS certificate: {e}")
}

/// What went wrong talking to the SMTP server at `host:port`, for the operator: whether
/// Costbridge never reached it (and what to check) or the server answered and refused.
pub fn explain(e: &lettre::transport::smtp::Error, s: &MailSettings) -> String {
    let (host, port) = address(s).unwrap_or(("(no host)", 0));
    let at = format!("{host}:{port}");
    if e.is_permanent() || e.is_transient() {
        format!(
            "the SMTP server at {at} refused the message: {e}. Check [mail] from, username and \
             password, and the recipient address"
        )
    } else if e.is_tls() {
        format!(
            "Costbridge reached {at} but could not set up TLS with it: {e}. Check that [mail] tls \
             (\"{}\") matches what the server offers on port {port}",
            tls_name(s.tls)
        )
    } else if e.is_timeout() {
        format!(
            "the SMTP server at {at} did not answer within {} seconds. Check that it runs, that \
             [mail] host and port are right and that this machine may reach it",
            s.timeout_seconds.max(1)
        )
    } else if e.is_response() || e.is_client() {
        format!("the SMTP server at {at} answered in a way Costbridge does not understand: {e}")
    } else {
        format!(
            "Costbridge could not connect to the SMTP server at {at} ({e}). Check that the mail \
             server runs and that [mail] host and port (COSTBRIDGE__MAIL__HOST, \
             COSTBRIDGE__MAIL__PORT) name it, and that this machine may reach it"
        )
    }
}

fn tls_name(t: TlsMode) -> &'static str {
    match t {
        TlsMode::None => "none",
        TlsMode::Starttls => "starttls",
        TlsMode::Tls => "tls",
    }
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

    #[tokio::test]
    async fn a_host_with_its_port_is_refused_by_name() {
        let s = MailSettings {
            host: Some("smtp.example.com:587".into()),
            ..MailSettings::default()
        };
        let e = transport(&s).expect_err("refused").to_string();
        assert!(e.contains("'smtp.example.com:587' holds a port"), "{e}");
        let local = MailSettings {
            host: Some("::1".into()),
            tls: TlsMode::None,
            ..MailSettings::default()
        };
        assert!(transport(&local).unwrap().is_some());
    }
}
