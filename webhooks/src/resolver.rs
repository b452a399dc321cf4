//! Name resolution for deliveries that only ever yields addresses the operator's policy
//! permits: a webhook's host name is judged on every connection, so a name that points at
//! a private address (at creation or later, DNS rebinding) never gets a request.

use std::net::SocketAddr;

use linktrace_domain::AddressPolicy;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

pub struct PolicyResolver {
    pub policy: AddressPolicy,
}

/// The name gives no address the policy permits: it does not resolve, or only to refused
/// addresses. One answer for both, so a tenant's webhook cannot probe which internal names
/// exist.
#[derive(Debug, thiserror::Error)]
#[error("the host has no public address that may be reached")]
pub struct NoAllowedAddress;

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> = match tokio::net::lookup_host((host.as_str(), 0)).await {
                Ok(addresses) => addresses
                    .filter(|address| policy.permits(address.ip()))
                    .collect(),
                Err(_) => Vec::new(),
            };
            if found.is_empty() {
                return Err(Box::new(NoAllowedAddress) as _);
            }
            Ok(Box::new(found.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    async fn refusal(host: &str) -> String {
        let resolver = PolicyResolver {
            policy: AddressPolicy {
                allow_private: false,
            },
        };
        match resolver.resolve(Name::from_str(host).unwrap()).await {
            Ok(_) => panic!("{host} resolved to an allowed address"),
            Err(error) => error.to_string(),
        }
    }

    /// A name that resolves only to refused addresses (`localhost`, from every machine's
    /// hosts file) and a name that does not resolve at all get the same answer: a
    /// tenant's webhook cannot tell which internal names exist. Before, the first said
    /// "localhost resolves only to addresses that are not allowed" and the second was the
    /// system resolver's "failed to lookup address".
    #[tokio::test]
    async fn refused_and_unknown_names_read_the_same() {
        let refused = refusal("localhost").await;
        let unknown = refusal("no-such-host.invalid").await;
        assert_eq!(refused, unknown);
        assert!(!refused.contains("localhost"), "{refused}");
    }
}
