//! LinkTrace's domain: values that are valid by construction ("parse, don't validate"),
//! the event record that travels on the stream, and the public error envelope.
//!
//! Nothing here knows about HTTP, Kafka, Postgres or ClickHouse.

pub mod api_key;
pub mod app_ids;
pub mod attribution;
pub mod billing_month;
pub mod click_facts;
pub mod domain_name;
pub mod endpoint_address;
pub mod entity_id;
pub mod entity_state;
pub mod envelope;
pub mod environment;
pub mod event_name;
pub mod event_record;
pub mod plan;
pub mod revenue;
pub mod schema;
pub mod short_code;
pub mod web_url;
pub mod webhook;

pub use api_key::{ApiKey, ApiKeyHash};
pub use app_ids::{AndroidPackage, AppleTeamId, BundleId, CertFingerprint};
pub use attribution::AttributionMatch;
pub use billing_month::BillingMonth;
pub use click_facts::{os_family, ClickFacts, Device, Utm, OS_FAMILY_SQL};
pub use domain_name::DomainName;
pub use endpoint_address::AddressPolicy;
pub use entity_id::EntityId;
pub use entity_state::EntityState;
pub use envelope::{ErrorCode, ErrorEnvelope};
pub use environment::Environment;
pub use event_name::{EventName, SystemEvent};
pub use event_record::{
    entity_claim_key, ClientFacts, DecodeError, EventRecord, EventSource, WriteLayout,
    OLDEST_SCHEMA_VERSION, SCHEMA_VERSION,
};
pub use plan::{Endpoint, PlanName};
pub use revenue::{AmountSum, Currency, Revenue};
pub use short_code::ShortCode;
pub use web_url::WebUrl;
pub use webhook::{EventTypes, WebhookSecret};

/// Why a raw value was refused. The message names the field and the rule, so it can be
/// shown to the API caller as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

impl ParseError {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}
