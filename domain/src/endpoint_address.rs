//! Which network addresses a customer's endpoint (a webhook URL) may resolve to. An
//! endpoint on loopback, a private network, link-local (cloud metadata services live at
//! 169.254.169.254) or another non-public range would let a customer make our servers call
//! inside our own network, so such addresses are refused unless the operator allows them
//! (a single-machine setup, where the receiver runs beside the stack).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressPolicy {
    pub allow_private: bool,
}

impl AddressPolicy {
    pub fn permits(self, address: IpAddr) -> bool {
        self.allow_private || is_public(address)
    }

    /// What can be told from a URL alone: its host, when that is an IP address or a
    /// `localhost` name. Host names are judged where they are resolved, at each delivery
    /// (a name can point elsewhere tomorrow).
    pub fn permits_url_host(self, url: &str) -> bool {
        match url::Url::parse(url).ok().as_ref().and_then(url::Url::host) {
            Some(url::Host::Ipv4(v4)) => self.permits(IpAddr::V4(v4)),
            Some(url::Host::Ipv6(v6)) => self.permits(IpAddr::V6(v6)),
            Some(url::Host::Domain(name)) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                let loopback = name == "localhost" || name.ends_with(".localhost");
                !loopback || self.permits(IpAddr::V4(Ipv4Addr::LOCALHOST))
            }
            None => false,
        }
    }
}

/// An address on the public internet: not loopback, private, shared (CGNAT), link-local,
/// unspecified, multicast, broadcast, documentation, benchmarking or reserved; IPv4 inside
/// IPv6 (mapped, NAT64) is judged as IPv4.
pub fn is_public(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let segments = v6.segments();
            if segments[0] == 0x64 && segments[1] == 0xff9b {
                // NAT64 (64:ff9b::/96 and the local-use 64:ff9b:1::/48).
                let octets = v6.octets();
                return is_public_v4(Ipv4Addr::new(
                    octets[12], octets[13], octets[14], octets[15],
                ));
            }
            is_public_v6(v6)
        }
    }
}

fn is_public_v4(v4: Ipv4Addr) -> bool {
    let [a, b, c, _] = v4.octets();
    !(v4.is_unspecified()
        || v4.is_loopback()
        || v4.is_private()
        || v4.is_link_local()
        || v4.is_multicast()
        || v4.is_broadcast()
        || v4.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || a >= 240) // reserved
}

fn is_public_v6(v6: Ipv6Addr) -> bool {
    let first = v6.segments()[0];
    !(v6.is_unspecified()
        || v6.is_loopback()
        || v6.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link-local
        || (first & 0xffc0) == 0xfec0 // site-local (deprecated)
        || first == 0x2001 && v6.segments()[1] == 0x0db8 // documentation
        || v6.segments()[..6].iter().all(|s| *s == 0)) // IPv4-compatible (deprecated)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(text: &str) -> bool {
        is_public(text.parse().unwrap())
    }

    #[test]
    fn internal_ranges_are_not_public() {
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.2.1",
            "240.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "2001:db8::1",
            "::127.0.0.1",
        ] {
            assert!(!public(internal), "{internal}");
        }
    }

    #[test]
    fn public_addresses_are() {
        for open in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert!(public(open), "{open}");
        }
    }

    #[test]
    fn the_policy_may_allow_private_addresses() {
        let loopback: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(!AddressPolicy {
            allow_private: false
        }
        .permits(loopback));
        assert!(AddressPolicy {
            allow_private: true
        }
        .permits(loopback));
    }

    #[test]
    fn url_hosts_that_are_addresses_or_localhost_are_judged() {
        let strict = AddressPolicy {
            allow_private: false,
        };
        for refused in [
            "http://127.0.0.1:9000/hook",
            "http://[::1]/x",
            "https://localhost/x",
            "https://api.localhost./x",
            "http://169.254.169.254/latest/meta-data",
            "http://0x7f.1/",
        ] {
            assert!(!strict.permits_url_host(refused), "{refused}");
        }
        assert!(strict.permits_url_host("https://hooks.example.com/x"));
        assert!(strict.permits_url_host("https://8.8.8.8/x"));
        assert!(AddressPolicy {
            allow_private: true
        }
        .permits_url_host("http://127.0.0.1:1/"));
    }
}
