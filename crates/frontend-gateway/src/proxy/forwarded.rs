//! Who the client is: the peer address, unless the peer is a configured trusted proxy
//! (`TRUSTED_PROXIES`), and only then what that proxy says in `X-Forwarded-For`,
//! `X-Forwarded-Proto` and `X-Forwarded-Host`.
//!
//! `X-Forwarded-For` is read from the right: each trusted proxy appends the address it saw, so
//! the right-most entry that is NOT a trusted proxy is the client (anything left of it was
//! written by the client and is ignored). Without trusted proxies (the default) no
//! `X-Forwarded-*` header is ever believed.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use actix_web::HttpRequest;
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// One trusted network: an address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let network: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| "an entry is not an IP address or CIDR".to_owned())?;
        let network = network.to_canonical();
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| "an entry has a bad prefix length".to_owned())?,
        };
        Ok(Self { network, prefix })
    }
}

/// `TRUSTED_PROXIES`: comma-separated IPs and CIDRs (`10.0.0.0/8, 127.0.0.1, fd00::/8`).
/// Empty by default: nobody is trusted.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Cidr>);

impl fmt::Debug for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|c| format!("{}/{}", c.network, c.prefix)))
            .finish()
    }
}

impl TrustedProxies {
    /// `true` when `ip` is one of the trusted proxies.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|c| c.contains(ip))
    }

    /// `true` when no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromStr for TrustedProxies {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(Cidr::from_str)
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }
}

/// What the gateway believes about the client of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// The client's address (the throttling key, and the `X-Forwarded-For` sent upstream).
    pub ip: Option<IpAddr>,
    /// `http` or `https`, as the client used it.
    pub proto: &'static str,
    /// The `Host` the client asked for (only ever forwarded upstream, never used for URLs).
    pub host: Option<HeaderValue>,
}

/// The right-most value of a (possibly repeated, comma-separated) header.
fn last_value<'h>(headers: &'h HeaderMap, name: &HeaderName) -> Option<&'h str> {
    headers
        .get_all(name)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .rfind(|v| !v.is_empty())
}

/// The client address: `peer`, unless it is trusted; then the right-most untrusted
/// `X-Forwarded-For` entry. An entry that does not parse stops the walk (the nearest trusted
/// hop is used): nothing left of garbage can be believed.
pub fn client_ip(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    trusted: &TrustedProxies,
) -> Option<IpAddr> {
    let mut client = peer?.to_canonical();
    if !trusted.contains(client) {
        return Some(client);
    }
    let entries: Vec<&str> = headers
        .get_all(HeaderName::from_static("x-forwarded-for"))
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    for entry in entries.into_iter().rev() {
        let Some(ip) = parse_forwarded_ip(entry) else {
            break;
        };
        client = ip;
        if !trusted.contains(ip) {
            break;
        }
    }
    Some(client)
}

/// An `X-Forwarded-For` entry: an IP, possibly with a port (`1.2.3.4:5`, `[::1]:5`).
fn parse_forwarded_ip(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .or_else(|_| entry.parse::<SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

/// The client of `req`, by the rule above. `X-Forwarded-Proto`/`-Host` are believed only
/// from a trusted peer, and then their right-most value (what the nearest proxy set).
pub fn client(req: &HttpRequest, trusted: &TrustedProxies) -> Client {
    let peer = req.peer_addr().map(|a| a.ip());
    let headers = req.headers();
    let from_proxy = peer.is_some_and(|p| trusted.contains(p));
    let own_proto = if req.app_config().secure() {
        "https"
    } else {
        "http"
    };
    let proto = from_proxy
        .then(|| last_value(headers, &HeaderName::from_static("x-forwarded-proto")))
        .flatten()
        .and_then(|p| {
            if p.eq_ignore_ascii_case("https") {
                Some("https")
            } else if p.eq_ignore_ascii_case("http") {
                Some("http")
            } else {
                None
            }
        })
        .unwrap_or(own_proto);
    let host = from_proxy
        .then(|| last_value(headers, &HeaderName::from_static("x-forwarded-host")))
        .flatten()
        .and_then(|h| HeaderValue::from_str(h).ok())
        .or_else(|| headers.get(header::HOST).cloned());
    Client {
        ip: client_ip(peer, headers, trusted),
        proto,
        host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xff(values: &[&'static str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(
                HeaderName::from_static("x-forwarded-for"),
                HeaderValue::from_static(v),
            );
        }
        map
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn trusted_proxies_parse_ips_and_cidrs() {
        let t: TrustedProxies = "10.0.0.0/8, 127.0.0.1 ,fd00::/8,".parse().unwrap();
        assert!(t.contains(ip("10.1.2.3")));
        assert!(t.contains(ip("127.0.0.1")));
        assert!(t.contains(ip("::ffff:127.0.0.1")), "IPv4-mapped peers");
        assert!(t.contains(ip("fd12::1")));
        assert!(!t.contains(ip("11.0.0.1")));
        assert!(!t.contains(ip("127.0.0.2")));
        assert!("".parse::<TrustedProxies>().unwrap().is_empty());
        assert!("10.0.0.0/33".parse::<TrustedProxies>().is_err());
        assert!("example.com".parse::<TrustedProxies>().is_err());
        assert!(
            "0.0.0.0/0"
                .parse::<TrustedProxies>()
                .unwrap()
                .contains(ip("8.8.8.8"))
        );
    }

    #[test]
    fn forwarded_for_is_ignored_from_an_untrusted_peer() {
        let t: TrustedProxies = "10.0.0.1".parse().unwrap();
        let got = client_ip(Some(ip("203.0.113.9")), &xff(&["1.1.1.1"]), &t);
        assert_eq!(got, Some(ip("203.0.113.9")));
    }

    #[test]
    fn the_right_most_untrusted_forwarded_for_entry_is_the_client() {
        let t: TrustedProxies = "10.0.0.0/8".parse().unwrap();
        let headers = xff(&["6.6.6.6, 198.51.100.7", "10.0.0.2"]);
        assert_eq!(
            client_ip(Some(ip("10.0.0.1")), &headers, &t),
            Some(ip("198.51.100.7"))
        );
        // Only trusted hops: the left-most of them.
        assert_eq!(
            client_ip(Some(ip("10.0.0.1")), &xff(&["10.0.0.3"]), &t),
            Some(ip("10.0.0.3"))
        );
        // No header: the proxy itself.
        assert_eq!(
            client_ip(Some(ip("10.0.0.1")), &HeaderMap::new(), &t),
            Some(ip("10.0.0.1"))
        );
        // Garbage stops the walk at the nearest trusted hop.
        assert_eq!(
            client_ip(Some(ip("10.0.0.1")), &xff(&["6.6.6.6, garbage"]), &t),
            Some(ip("10.0.0.1"))
        );
        assert_eq!(
            client_ip(Some(ip("10.0.0.1")), &xff(&["[2001:db8::1]:443"]), &t),
            Some(ip("2001:db8::1"))
        );
    }
}
