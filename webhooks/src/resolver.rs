//! Name resolution for deliveries that only ever yields addresses the operator's policy
//! permits: a webhook's host name is judged on every connection, so a name that points at
//! a private address (at creation or later, DNS rebinding) never gets a request.

use std::net::SocketAddr;

use linktrace_domain::AddressPolicy;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

pub struct PolicyResolver {
    pub policy: AddressPolicy,
}

/// Every address the name resolves to is refused by the policy.
#[derive(Debug, thiserror::Error)]
#[error("{0} resolves only to addresses that are not allowed (loopback, private or reserved)")]
pub struct AddressNotAllowed(pub String);

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|address| policy.permits(address.ip()))
                .collect();
            if found.is_empty() {
                return Err(Box::new(AddressNotAllowed(host)) as _);
            }
            Ok(Box::new(found.into_iter()) as Addrs)
        })
    }
}
