//! The visitor key (unique clicks without raw IPs) and what is kept of a click's IP.

use std::net::IpAddr;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

/// A daily visitor key: `sha256(salt, ip, user agent, UTC day)`, 128 bits in hex. The same
/// device clicking twice in a day is one visitor; nobody can get back to the IP without
/// the salt, and keys do not link a device across days.
pub struct VisitorKeys {
    salt: Vec<u8>,
}

impl VisitorKeys {
    pub fn new(salt: &str) -> Self {
        Self {
            salt: salt.as_bytes().to_vec(),
        }
    }

    pub fn key(&self, ip: IpAddr, user_agent: &str, at: DateTime<Utc>) -> String {
        let mut hash = Sha256::new();
        hash.update(&self.salt);
        hash.update([0x1f]);
        match ip {
            IpAddr::V4(v4) => hash.update(v4.octets()),
            IpAddr::V6(v6) => hash.update(v6.octets()),
        }
        hash.update([0x1f]);
        hash.update(user_agent.as_bytes());
        hash.update([0x1f]);
        hash.update(at.date_naive().to_string().as_bytes());
        hex::encode(&hash.finalize()[..16])
    }
}

/// What is stored of a click's IP (`CLICK_IP_ANONYMISATION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpPolicy {
    Keep,
    /// IPv4 to its /24, IPv6 to its /48: still a fingerprint within a network, no longer
    /// a person's address.
    Truncate,
    /// No IP stored (fingerprint attribution then has nothing to match).
    Drop,
}

impl FromStr for IpPolicy {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim() {
            "keep" | "" => Ok(IpPolicy::Keep),
            "truncate" => Ok(IpPolicy::Truncate),
            "drop" => Ok(IpPolicy::Drop),
            other => anyhow::bail!(
                "CLICK_IP_ANONYMISATION must be keep, truncate or drop, not {other:?}"
            ),
        }
    }
}

impl IpPolicy {
    pub fn apply(self, ip: IpAddr) -> Option<String> {
        match self {
            IpPolicy::Keep => Some(ip.to_string()),
            IpPolicy::Drop => None,
            IpPolicy::Truncate => Some(match ip {
                IpAddr::V4(v4) => {
                    let [a, b, c, _] = v4.octets();
                    std::net::Ipv4Addr::new(a, b, c, 0).to_string()
                }
                IpAddr::V6(v6) => {
                    let mut segments = v6.segments();
                    segments[3..].fill(0);
                    std::net::Ipv6Addr::from(segments).to_string()
                }
            }),
        }
    }

    /// The IP as stored, for a look-up by an IP given in clear (an attribution's).
    pub fn apply_text(self, ip: &str) -> Option<String> {
        match ip.trim().parse::<IpAddr>() {
            Ok(parsed) => self.apply(parsed),
            Err(_) if self == IpPolicy::Keep => Some(ip.to_owned()),
            Err(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visitor_keys_are_daily_and_salted() {
        let keys = VisitorKeys::new("s1");
        let ip: IpAddr = "198.51.100.7".parse().unwrap();
        let morning = "2026-11-24T08:00:00Z".parse().unwrap();
        let evening = "2026-11-24T20:00:00Z".parse().unwrap();
        let tomorrow = "2026-11-25T08:00:00Z".parse().unwrap();
        assert_eq!(keys.key(ip, "ua", morning), keys.key(ip, "ua", evening));
        assert_ne!(keys.key(ip, "ua", morning), keys.key(ip, "ua", tomorrow));
        assert_ne!(keys.key(ip, "ua", morning), keys.key(ip, "ub", morning));
        assert_ne!(
            keys.key(ip, "ua", morning),
            VisitorKeys::new("s2").key(ip, "ua", morning)
        );
        assert_eq!(keys.key(ip, "ua", morning).len(), 32);
    }

    #[test]
    fn anonymisation() {
        let v4: IpAddr = "198.51.100.7".parse().unwrap();
        let v6: IpAddr = "2001:db8:1234:5678::1".parse().unwrap();
        assert_eq!(IpPolicy::Keep.apply(v4).unwrap(), "198.51.100.7");
        assert_eq!(IpPolicy::Truncate.apply(v4).unwrap(), "198.51.100.0");
        assert_eq!(IpPolicy::Truncate.apply(v6).unwrap(), "2001:db8:1234::");
        assert_eq!(IpPolicy::Drop.apply(v4), None);
        assert_eq!(
            IpPolicy::Truncate.apply_text(" 198.51.100.99").unwrap(),
            "198.51.100.0"
        );
        assert!("hide".parse::<IpPolicy>().is_err());
    }
}
