//! `POST/GET /api/v1/domains`, `DELETE /api/v1/domains/{domain}`, the DNS check
//! `POST /api/v1/domains/{domain}/verify`, and the operator's
//! `POST /admin/v1/domains/{domain}/verify` (see `crate::domains`).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use linktrace_domain::{DomainName, Endpoint};
use linktrace_platform::openapi::{errors, Yes};
use linktrace_platform::request::{JsonBody, PathSegment, RequestError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domains::{self, LinkDomain, VerifiedBy};
use crate::error::ApiError;
use crate::routes::links::Done;
use crate::routes::{caller, require_live};
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DomainBody {
    /// The host name the account's links are to be served on, e.g. `go.acme.com`.
    pub domain: DomainName,
}

/// The DNS record that verifies a domain.
#[derive(Debug, Serialize, ToSchema)]
pub struct TxtRecord {
    /// Always `TXT`.
    #[serde(rename = "type")]
    pub record_type: &'static str,
    /// `_linktrace.<domain>`.
    pub name: String,
    /// `linktrace-verify=<token>`.
    pub value: String,
}

/// A domain of the account's.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DomainView {
    pub domain: String,
    /// Whether it serves the account's links (verified by DNS or by the operator).
    pub verified: bool,
    pub verified_at: Option<DateTime<Utc>>,
    /// `dns` or `operator`.
    pub verified_by: Option<String>,
    /// The record to publish for the DNS verification.
    pub verification: TxtRecord,
    pub created_at: DateTime<Utc>,
}

impl From<LinkDomain> for DomainView {
    fn from(domain: LinkDomain) -> Self {
        DomainView {
            verification: TxtRecord {
                record_type: "TXT",
                name: format!("_linktrace.{}", domain.domain),
                value: domain.verification_value(),
            },
            verified: domain.verified_at.is_some(),
            verified_at: domain.verified_at,
            verified_by: domain.verified_by,
            created_at: domain.created_at,
            domain: domain.domain,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DomainAnswer {
    pub success: Yes,
    pub domain: DomainView,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DomainList {
    pub success: Yes,
    pub domains: Vec<DomainView>,
}

/// What the DNS check found.
#[derive(Debug, Serialize, ToSchema)]
pub struct DomainCheck {
    pub success: Yes,
    pub domain: DomainView,
    /// Whether the TXT record was found now.
    pub found: bool,
    /// Why not, when it was not.
    pub detail: Option<String>,
}

fn path_domain(raw: &str) -> Result<DomainName, ApiError> {
    DomainName::parse(raw).map_err(|e| ApiError::validation(format!("domain {e}")))
}

/// Add a domain to serve the account's links on; verify it by DNS or ask the operator
#[utoipa::path(
    post,
    path = "/api/v1/domains",
    operation_id = "addDomain",
    tag = "api",
    request_body = DomainBody,
    responses(
        (status = 201, description = "Added, not yet verified: publish `verification`", body = DomainAnswer),
        (status = 200, description = "The account's already", body = DomainAnswer),
        errors::BadRequest, errors::Unauthorized, errors::PlanUpgradeRequired,
        errors::DomainTaken, errors::PayloadTooLarge, errors::Unavailable,
    ),
    security(("apiKey" = [])),
)]
pub async fn add(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<JsonBody<DomainBody>, RequestError>,
) -> Result<Response, ApiError> {
    let caller = caller(&state, &headers).await?;
    caller.require(Endpoint::CreateReferralLink)?;
    require_live(&caller)?;
    let JsonBody(body) = body?;
    if state.settings.public_host.as_deref() == Some(body.domain.as_str()) {
        return Err(ApiError::DomainTaken);
    }
    let (domain, added) = domains::add(&state.pool, caller.account_id, &body.domain).await?;
    let status = if added {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(DomainAnswer {
            success: Yes,
            domain: domain.into(),
        }),
    )
        .into_response())
}

/// The account's domains
#[utoipa::path(
    get,
    path = "/api/v1/domains",
    operation_id = "listDomains",
    tag = "api",
    responses(
        (status = 200, description = "Oldest first", body = DomainList),
        errors::Unauthorized, errors::PlanUpgradeRequired, errors::Unavailable,
    ),
    security(("apiKey" = [])),
)]
pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<DomainList>, ApiError> {
    let caller = caller(&state, &headers).await?;
    caller.require(Endpoint::CreateReferralLink)?;
    let domains = domains::list(&state.pool, caller.account_id).await?;
    Ok(Json(DomainList {
        success: Yes,
        domains: domains.into_iter().map(DomainView::from).collect(),
    }))
}

/// Remove a domain: its links are served on the shared host again
#[utoipa::path(
    delete,
    path = "/api/v1/domains/{domain}",
    operation_id = "removeDomain",
    tag = "api",
    params(("domain" = DomainName, Path)),
    responses(
        (status = 200, description = "Removed", body = Done),
        errors::BadRequest, errors::Unauthorized, errors::PlanUpgradeRequired,
        errors::NotFound, errors::Unavailable,
    ),
    security(("apiKey" = [])),
)]
pub async fn remove(
    State(state): State<AppState>,
    PathSegment(raw): PathSegment,
    headers: HeaderMap,
) -> Result<Json<Done>, ApiError> {
    let caller = caller(&state, &headers).await?;
    caller.require(Endpoint::CreateReferralLink)?;
    require_live(&caller)?;
    let domain = path_domain(&raw)?;
    domains::remove(&state.pool, caller.account_id, &domain).await?;
    state.domain_owners.forget(&domain);
    Ok(Json(Done { success: Yes }))
}

/// Look up the domain's TXT record now; verified once it holds the value
#[utoipa::path(
    post,
    path = "/api/v1/domains/{domain}/verify",
    operation_id = "checkDomain",
    tag = "api",
    params(("domain" = DomainName, Path)),
    responses(
        (status = 200, description = "What the look-up found, and the domain", body = DomainCheck),
        errors::BadRequest, errors::Unauthorized, errors::PlanUpgradeRequired,
        errors::NotFound, errors::Unavailable,
    ),
    security(("apiKey" = [])),
)]
pub async fn check(
    State(state): State<AppState>,
    PathSegment(raw): PathSegment,
    headers: HeaderMap,
) -> Result<Json<DomainCheck>, ApiError> {
    let caller = caller(&state, &headers).await?;
    caller.require(Endpoint::CreateReferralLink)?;
    require_live(&caller)?;
    let name = path_domain(&raw)?;
    let domain = domains::find_owned(&state.pool, caller.account_id, &name).await?;
    let (found, detail) = match state
        .dns
        .has_record(&name, &domain.verification_value())
        .await
    {
        Ok(true) => (true, None),
        Ok(false) => (
            false,
            Some(format!(
                "no TXT record {:?} at {} yet",
                domain.verification_value(),
                name.verification_name()
            )),
        ),
        Err(why) => (false, Some(format!("the DNS look-up failed: {why}"))),
    };
    let domain = if found {
        let verified =
            domains::mark_verified(&state.pool, &name, VerifiedBy::Dns, Some(caller.account_id))
                .await?;
        state.domain_owners.forget(&name);
        verified
    } else {
        domain
    };
    Ok(Json(DomainCheck {
        success: Yes,
        domain: domain.into(),
        found,
        detail,
    }))
}

/// The operator verifies an account's domain
#[utoipa::path(
    post,
    path = "/admin/v1/domains/{domain}/verify",
    operation_id = "verifyDomain",
    tag = "admin",
    params(("domain" = DomainName, Path)),
    responses(
        (status = 200, description = "Verified", body = DomainAnswer),
        errors::BadRequest, errors::Unauthorized, errors::NotFound, errors::Unavailable,
    ),
    security(("adminToken" = [])),
)]
pub async fn operator_verify(
    State(state): State<AppState>,
    PathSegment(raw): PathSegment,
    headers: HeaderMap,
) -> Result<Json<DomainAnswer>, ApiError> {
    crate::routes::admin::require_admin(&state, &headers)?;
    let name = path_domain(&raw)?;
    let domain = domains::mark_verified(&state.pool, &name, VerifiedBy::Operator, None).await?;
    state.domain_owners.forget(&name);
    Ok(Json(DomainAnswer {
        success: Yes,
        domain: domain.into(),
    }))
}
