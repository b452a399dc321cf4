//! The operator's setting for customers' endpoints (webhook URLs): whether they may point at
//! loopback and private networks. Read by the api (when a webhook is created) and by the
//! webhook worker (on every connection it makes).

use envconfig::Envconfig;
use linktrace_domain::AddressPolicy;

#[derive(Envconfig, Clone, Copy, Debug)]
pub struct EndpointPolicyConfig {
    /// `true` only where receivers run beside the stack (deploy/up.sh's single machine);
    /// never where customers share the network with the services.
    #[envconfig(from = "WEBHOOKS_ALLOW_PRIVATE_URLS", default = "false")]
    pub allow_private_urls: bool,
}

impl EndpointPolicyConfig {
    pub fn policy(self) -> AddressPolicy {
        AddressPolicy {
            allow_private: self.allow_private_urls,
        }
    }
}
