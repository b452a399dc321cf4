//! The client's IP: the TCP peer, or what a trusted proxy says the client was.

use std::net::IpAddr;
use std::str::FromStr;

use axum::http::HeaderMap;
use ipnet::IpNet;

/// A list of addresses and CIDR ranges, comma-separated in configuration.
#[derive(Debug, Clone, Default)]
pub struct Networks(Vec<IpNet>);

impl FromStr for Networks {
    type Err = anyhow::Error;

    fn from_str(list: &str) -> Result<Self, Self::Err> {
        list.split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| anyhow::anyhow!("{entry:?} is not an address or CIDR range"))
            })
            .collect::<Result<_, _>>()
            .map(Networks)
    }
}

impl Networks {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }
}

/// The proxies (addresses or ranges) whose `X-Forwarded-For` entries are believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Networks);

impl FromStr for TrustedProxies {
    type Err = anyhow::Error;

    fn from_str(list: &str) -> Result<Self, Self::Err> {
        list.parse()
            .map(TrustedProxies)
            .map_err(|e| anyhow::anyhow!("TRUSTED_PROXIES: {e}"))
    }
}

impl TrustedProxies {
    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.contains(ip)
    }

    /// The client of a request from `peer`. A peer we do not trust is the client, whatever
    /// it sends. From a trusted peer, `X-Forwarded-For` is read right to left (each proxy
    /// appends the address it saw) and the first address not itself a trusted proxy is the
    /// client: entries to its left were written by the client and prove nothing.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return peer;
        }
        let mut client = peer;
        let entries = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .collect::<Vec<_>>();
        for entry in entries.into_iter().rev() {
            match entry.trim().parse::<IpAddr>() {
                Ok(ip) => {
                    client = canonical(ip);
                    if !self.trusts(client) {
                        break;
                    }
                }
                // Garbage after a trusted hop: stop at the last address a proxy vouched for.
                Err(_) => break,
            }
        }
        client
    }
}

/// IPv4 written as IPv6 (`::ffff:1.2.3.4`, what a dual-stack socket reports) as IPv4.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("x-forwarded-for", HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let proxies: TrustedProxies = "10.0.0.0/8".parse().unwrap();
        let headers = forwarded(&["9.9.9.9"]);
        assert_eq!(
            proxies.client_ip(ip("203.0.113.5"), &headers),
            ip("203.0.113.5")
        );
        let none = TrustedProxies::default();
        assert_eq!(none.client_ip(ip("127.0.0.1"), &headers), ip("127.0.0.1"));
    }

    #[test]
    fn a_trusted_proxy_names_the_client_and_a_spoofed_entry_is_skipped() {
        let proxies: TrustedProxies = "127.0.0.1, 10.0.0.0/8".parse().unwrap();
        // The client sent "9.9.9.9"; the gateway appended the address it saw.
        let headers = forwarded(&["9.9.9.9, 198.51.100.7"]);
        assert_eq!(
            proxies.client_ip(ip("127.0.0.1"), &headers),
            ip("198.51.100.7")
        );
        // Two trusted hops, split over two header lines.
        let headers = forwarded(&["9.9.9.9, 198.51.100.7", "10.1.2.3"]);
        assert_eq!(
            proxies.client_ip(ip("10.0.0.2"), &headers),
            ip("198.51.100.7")
        );
        // No header: the proxy itself.
        assert_eq!(
            proxies.client_ip(ip("127.0.0.1"), &HeaderMap::new()),
            ip("127.0.0.1")
        );
        // Garbage right after the proxy: the proxy, not the garbage's left neighbour.
        let headers = forwarded(&["9.9.9.9, nonsense"]);
        assert_eq!(
            proxies.client_ip(ip("127.0.0.1"), &headers),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn mapped_addresses_and_bad_lists() {
        let proxies: TrustedProxies = "127.0.0.1".parse().unwrap();
        let headers = forwarded(&["198.51.100.7"]);
        assert_eq!(
            proxies.client_ip(ip("::ffff:127.0.0.1"), &headers),
            ip("198.51.100.7")
        );
        assert!("10.0.0.0/33".parse::<TrustedProxies>().is_err());
        assert!("gateway".parse::<TrustedProxies>().is_err());
    }
}
