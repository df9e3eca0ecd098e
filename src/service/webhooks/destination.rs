//! Where a webhook may be sent: `https` only unless allowed, and never to a loopback, private,
//! link-local or otherwise non-public address unless allowed, so that an operator's URL cannot
//! reach the gateway's own network (the cloud metadata service at 169.254.169.254, the
//! database). Checked when the URL is given, and again for every delivery against the addresses
//! the name resolves to then, in the resolver the HTTP client connects with: a name that
//! resolved to a public address at creation and to a private one later is refused.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::Url;

/// What the operator allowed.
#[derive(Clone, Copy, Debug, Default)]
pub struct Policy {
    pub allow_http: bool,
    pub allow_private: bool,
}

impl Policy {
    /// `url` parsed, if the policy allows it as written (the addresses of a name are checked
    /// by [`Policy::resolve`]); the error says what is wrong.
    pub fn check_url(&self, url: &str) -> Result<Url, String> {
        let parsed = Url::parse(url).map_err(|error| format!("url is not a URL ({error})"))?;
        match parsed.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            "http" => return Err("url must be https (the gateway runs without --webhooks-allow-http)".into()),
            other => return Err(format!("url must be https, not {other}")),
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err("url must not carry credentials; the signature authenticates the gateway".into());
        }
        let refused =
            |what: &str| Err(format!("url points at {what}; allowed only with --webhooks-allow-private"));
        match parsed.host() {
            None => return Err("url has no host".into()),
            Some(url::Host::Domain(domain)) if !self.allow_private && is_local_name(domain) => {
                return refused("this machine")
            }
            Some(url::Host::Ipv4(ip)) if !self.allow_private && !is_public(IpAddr::V4(ip)) => {
                return refused("a non-public address")
            }
            Some(url::Host::Ipv6(ip)) if !self.allow_private && !is_public(IpAddr::V6(ip)) => {
                return refused("a non-public address")
            }
            Some(_) => {}
        }
        Ok(parsed)
    }

    /// The addresses of `host` a delivery may connect to: all of them, or only public ones.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
        let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|error| format!("{host} does not resolve ({error})"))?
            .collect();
        let allowed: Vec<SocketAddr> = resolved
            .iter()
            .copied()
            .filter(|address| self.allow_private || is_public(address.ip()))
            .collect();
        if allowed.is_empty() {
            return Err(format!(
                "{host} resolves only to non-public addresses; allowed only with --webhooks-allow-private"
            ));
        }
        Ok(allowed)
    }

    /// The resolver for the HTTP client, applying this policy to every connection.
    pub fn resolver(self) -> Arc<PolicyResolver> {
        Arc::new(PolicyResolver(self))
    }
}

/// Resolves names for deliveries, leaving out the addresses the policy refuses.
pub struct PolicyResolver(Policy);

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.0;
        Box::pin(async move {
            let allowed = policy.resolve(name.as_str(), 0).await?;
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

fn is_local_name(domain: &str) -> bool {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    domain == "localhost" || domain.ends_with(".localhost")
}

/// Whether `ip` is an address on the public internet: not loopback, private (RFC 1918, unique
/// local), link-local, shared (CGNAT), unspecified, broadcast, multicast or documentation.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_public_v4(ip),
        IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
            Some(mapped) => is_public_v4(mapped),
            None => is_public_v6(ip),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        || first == 0x2001 && ip.segments()[1] == 0x0db8
        || first == 0x0064 && ip.segments()[1] == 0xff9b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_not_public() {
        for refused in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(!is_public(refused.parse().unwrap()), "{refused}");
        }
        for allowed in ["52.94.76.10", "8.8.8.8", "2600:1f18::1"] {
            assert!(is_public(allowed.parse().unwrap()), "{allowed}");
        }
    }

    #[test]
    fn urls_are_checked_as_written() {
        let strict = Policy::default();
        assert!(strict.check_url("https://hooks.example.com/datasync").is_ok());
        for (url, says) in [
            ("http://hooks.example.com/", "must be https"),
            ("ftp://hooks.example.com/", "must be https"),
            ("https://127.0.0.1/", "non-public"),
            ("https://169.254.169.254/latest/meta-data", "non-public"),
            ("https://[::1]:8443/", "non-public"),
            ("https://localhost/", "this machine"),
            ("https://user:pass@hooks.example.com/", "credentials"),
            ("not a url", "not a URL"),
        ] {
            let error = strict.check_url(url).unwrap_err();
            assert!(error.contains(says), "{url}: {error}");
        }
        let open = Policy { allow_http: true, allow_private: true };
        assert!(open.check_url("http://127.0.0.1:9000/hook").is_ok());
    }

    #[tokio::test]
    async fn a_name_is_checked_by_the_addresses_it_resolves_to() {
        let error = Policy::default().resolve("localhost", 443).await.unwrap_err();
        assert!(error.contains("non-public"), "{error}");
        let open = Policy { allow_http: false, allow_private: true };
        assert!(open
            .resolve("localhost", 443)
            .await
            .unwrap()
            .iter()
            .all(|address| address.ip().is_loopback()));
    }
}
