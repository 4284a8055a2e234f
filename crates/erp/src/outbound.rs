//! Where connectors may connect: the operator's outbound policy (`[outbound]` in the server's
//! settings). By default no loopback, private, link-local, unspecified or metadata address is
//! reached, so a company admin cannot point a connector into the operator's network. The check is
//! on the address each connection resolves to, so a name that later resolves elsewhere (DNS
//! rebinding) is caught too.
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::{Url, redirect};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

/// What to say when the policy refuses, naming the settings that would allow it.
const HOW_TO_ALLOW: &str =
    "the operator can allow it with [outbound] allow_private = true or an [outbound] allow entry";

/// The operator's policy for connectors' outbound connections; the default refuses internal
/// addresses.
#[derive(Debug, Clone, Default)]
pub struct Outbound(Arc<Policy>);

#[derive(Debug, Default)]
struct Policy {
    allow_private: bool,
    /// `(host, port)`: the host as a URL spells it (`10.0.0.5`, `erp.internal`, `[fd00::1]`);
    /// no port allows every port.
    allow: Vec<(String, Option<u16>)>,
}

impl Outbound {
    /// `allow` entries are `host` or `host:port` (`10.0.0.5`, `erp.internal:8000`,
    /// `[fd00::5]:8000`); an entry that is not one is named in the error.
    pub fn new(allow_private: bool, allow: &[String]) -> Result<Outbound, String> {
        let allow = allow
            .iter()
            .map(|entry| {
                Url::parse(&format!("http://{}/", entry.trim()))
                    .ok()
                    .filter(|u| u.path() == "/" && u.username().is_empty())
                    .and_then(|u| Some((u.host_str()?.to_owned(), u.port())))
                    .ok_or_else(|| {
                        format!("[outbound] allow: '{entry}' is not a host or host:port")
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(Outbound(Arc::new(Policy {
            allow_private,
            allow,
        })))
    }

    /// A client builder for requests to `url` that connects only where the policy permits, or
    /// why the address is refused. Redirects are not followed: one could lead anywhere.
    pub(crate) fn client(&self, url: &str) -> Result<reqwest::ClientBuilder, String> {
        let builder = reqwest::Client::builder().redirect(redirect::Policy::none());
        if self.0.allow_private {
            return Ok(builder);
        }
        // A proxy from the environment (`HTTPS_PROXY`) would resolve the name and connect
        // itself, where no address is checked: the policy's requests go direct.
        let builder = builder.no_proxy();
        let Ok(u) = Url::parse(url) else {
            // reqwest refuses it itself, in its own words.
            return Ok(builder);
        };
        if self.allows(&u) {
            return Ok(builder);
        }
        let literal = u
            .host_str()
            .and_then(|h| h.trim_start_matches('[').trim_end_matches(']').parse().ok());
        match literal.map(|ip| (ip, internal(ip))) {
            // An address in the URL is not resolved, so it is checked here.
            Some((ip, Some(kind))) => Err(format!(
                "{ip} is {kind} address, which connectors may not reach; {HOW_TO_ALLOW}"
            )),
            Some((_, None)) => Ok(builder),
            None => Ok(builder.dns_resolver(Arc::new(PublicOnly))),
        }
    }

    /// Whether `url` may be reached under the policy, checked now (an event subscriber's
    /// address as it is saved): an internal address, or a name that resolves to internal ones
    /// only, is refused with the reason. Each connection is checked again when it is made.
    pub async fn check(&self, url: &str) -> Result<(), String> {
        let _ = self.client(url)?;
        let Ok(u) = Url::parse(url) else {
            return Ok(());
        };
        let Some(host) = u.host_str() else {
            return Ok(());
        };
        let literal = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok();
        if self.0.allow_private || self.allows(&u) || literal {
            return Ok(());
        }
        public_addrs(host)
            .await
            .map(|_| ())
            .map_err(|e| format!("{e}"))
    }

    fn allows(&self, u: &Url) -> bool {
        let (Some(host), port) = (u.host_str(), u.port_or_known_default()) else {
            return false;
        };
        self.0
            .allow
            .iter()
            .any(|(h, p)| h.eq_ignore_ascii_case(host) && p.is_none_or(|p| Some(p) == port))
    }
}

/// What kind of internal address `ip` is (`"a loopback"`, …), or `None` for a public one.
fn internal(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(a) => {
            let [first, second, ..] = a.octets();
            if a.is_loopback() {
                Some("a loopback")
            } else if a.is_private() {
                Some("a private")
            } else if a.is_link_local() {
                // 169.254.169.254 is the cloud metadata service.
                Some("a link-local (or metadata)")
            } else if first == 0 || a.is_broadcast() {
                Some("an unspecified")
            } else if first == 100 && (second & 0xc0) == 64 {
                // 100.64/10, carrier-grade NAT: internal too (and Alibaba's metadata service).
                Some("a shared (carrier-grade NAT)")
            } else if (first, second) == (192, 0) && a.octets()[2] == 0
                || first == 198 && second & 0xfe == 18
                || first >= 240
            {
                // 192.0.0/24 (protocol assignments), 198.18/15 (benchmark networks, often a
                // lab's internal range) and 240/4: never a public service.
                Some("a reserved")
            } else {
                None
            }
        }
        IpAddr::V6(a) => {
            let first = a.segments()[0];
            if let Some(v4) = a.to_ipv4_mapped().or_else(|| embedded_ipv4(a)) {
                internal(IpAddr::V4(v4))
            } else if a.is_loopback() {
                Some("a loopback")
            } else if a.is_unspecified() {
                Some("an unspecified")
            } else if a.segments()[..3] == [0x64, 0xff9b, 1] {
                // 64:ff9b:1::/48 (RFC 8215): a site's own translator, whose layout it chooses.
                Some("a local NAT64")
            } else if first & 0xfe00 == 0xfc00 {
                // fc00::/7, unique local; AWS's IPv6 metadata service (fd00:ec2::254) is in it.
                Some("a private")
            } else if first & 0xffc0 == 0xfe80 {
                Some("a link-local")
            } else if first & 0xffc0 == 0xfec0 {
                // fec0::/10, site-local: deprecated, but still routed inside some sites.
                Some("a site-local")
            } else {
                None
            }
        }
    }
}

/// The IPv4 address inside a NAT64 (`64:ff9b::/96`, RFC 6052), 6to4 (`2002::/16`, RFC 3056) or
/// IPv4-compatible (`::a.b.c.d`, deprecated but still routed by some stacks) address: a network
/// that translates these reaches that IPv4 address, so `64:ff9b::a9fe:a9fe` is the metadata
/// service, not a public host. `::` and `::1` are left to their own checks.
fn embedded_ipv4(a: Ipv6Addr) -> Option<Ipv4Addr> {
    let v4 = |hi: u16, lo: u16| Some(Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)));
    match a.segments() {
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] | [0x2002, hi, lo, ..] => v4(hi, lo),
        [0, 0, 0, 0, 0, 0, hi, lo] if hi != 0 => v4(hi, lo),
        _ => None,
    }
}

/// Resolves names as the system does and drops every internal address; a name with nothing else
/// is refused with the reason.
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(
            async move { Ok(Box::new(public_addrs(name.as_str()).await?.into_iter()) as Addrs) },
        )
    }
}

/// The public addresses `host` resolves to; a name with nothing else is refused with the reason.
async fn public_addrs(
    host: &str,
) -> Result<Vec<SocketAddr>, Box<dyn std::error::Error + Send + Sync>> {
    let all: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
        .await
        .map_err(|e| format!("{host} cannot be resolved: {e}"))?
        .collect();
    let public: Vec<SocketAddr> = all
        .iter()
        .copied()
        .filter(|a| internal(a.ip()).is_none())
        .collect();
    match all.first().and_then(|a| Some((a.ip(), internal(a.ip())?))) {
        Some((ip, kind)) if public.is_empty() => Err(format!(
            "{host} resolves to {ip}, {kind} address, which connectors may not reach; {HOW_TO_ALLOW}"
        )
        .into()),
        _ => Ok(public),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_named() {
        for (ip, kind) in [
            ("127.0.0.1", Some("a loopback")),
            ("10.1.2.3", Some("a private")),
            ("172.16.0.1", Some("a private")),
            ("192.168.1.1", Some("a private")),
            ("169.254.169.254", Some("a link-local (or metadata)")),
            ("0.0.0.0", Some("an unspecified")),
            ("100.100.100.200", Some("a shared (carrier-grade NAT)")),
            ("192.0.0.8", Some("a reserved")),
            ("198.19.255.1", Some("a reserved")),
            ("198.20.0.1", None),
            ("192.0.2.1", None),
            ("240.0.0.1", Some("a reserved")),
            ("fec0::1", Some("a site-local")),
            ("::1", Some("a loopback")),
            ("::", Some("an unspecified")),
            ("fd00:ec2::254", Some("a private")),
            ("fe80::1", Some("a link-local")),
            ("::ffff:10.0.0.1", Some("a private")),
            ("64:ff9b::a9fe:a9fe", Some("a link-local (or metadata)")),
            ("::10.0.0.1", Some("a private")),
            ("64:ff9b:1::7f00:1", Some("a local NAT64")),
            ("2002:c0a8:101::1", Some("a private")),
            ("64:ff9b::5db8:d70e", None),
            ("93.184.215.14", None),
            ("2606:4700::1111", None),
        ] {
            assert_eq!(internal(ip.parse().unwrap()), kind, "{ip}");
        }
    }

    #[test]
    fn the_default_refuses_internal_literals_and_the_settings_allow_them() {
        let strict = Outbound::default();
        let e = strict.client("http://127.0.0.1:8000/").unwrap_err();
        assert!(e.starts_with("127.0.0.1 is a loopback address"), "{e}");
        assert!(e.contains("[outbound] allow_private = true"), "{e}");
        assert!(strict.client("http://[fd00::5]/").is_err());
        assert!(strict.client("https://93.184.215.14/").is_ok());
        assert!(strict.client("https://erp.example/").is_ok());

        let allow = |entries: &[&str]| {
            Outbound::new(
                false,
                &entries.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
            )
        };
        let some = allow(&["10.0.0.5", "erp.internal:8000", "[fd00::5]:443"]).unwrap();
        assert!(some.client("http://10.0.0.5:1234/").is_ok());
        assert!(some.client("http://10.0.0.6/").is_err());
        assert!(some.client("https://[fd00::5]/").is_ok());
        assert!(
            some.client("http://[fd00::5]/").is_err(),
            "port 80 is not allowed"
        );
        assert!(some.allows(&Url::parse("http://ERP.internal:8000/x").unwrap()));
        assert!(!some.allows(&Url::parse("http://erp.internal/").unwrap()));
        assert!(
            Outbound::new(true, &[])
                .unwrap()
                .client("http://127.0.0.1/")
                .is_ok()
        );
        assert_eq!(
            allow(&["http://x/y"]).unwrap_err(),
            "[outbound] allow: 'http://x/y' is not a host or host:port"
        );
    }

    #[tokio::test]
    async fn a_name_that_resolves_to_loopback_is_refused_when_connecting() {
        let client = Outbound::default()
            .client("http://localhost:9/")
            .unwrap()
            .build()
            .unwrap();
        let e = client.get("http://localhost:9/").send().await.unwrap_err();
        let mut cause: &dyn std::error::Error = &e;
        while let Some(next) = cause.source() {
            cause = next;
        }
        let text = cause.to_string();
        assert!(text.starts_with("localhost resolves to "), "{text}");
        assert!(text.contains("a loopback address"), "{text}");
        assert!(text.contains("[outbound] allow_private = true"), "{text}");
    }
}
