//! `Idempotency-Key` on the events, batch and capture-event endpoints (spec, "Idempotent
//! requests").
//!
//! A layer around the three routes ([`layer`]) keeps one Postgres row per (account,
//! environment, key) for 24 hours, shared by every ingest instance:
//! - the first request with a key inserts the row with a fresh `nonce` and the hash of its
//!   method, path and body;
//! - once the request is answered (2xx or 4xx other than 429), the answer is kept in the
//!   row, and a repeat with the same body gets it back with `Idempotent-Replayed: true`;
//! - a repeat while there is no answer (the first got a 503, or no answer at all) is
//!   processed again with the row's nonce. Each event of the request has its id and a dedup
//!   claim derived from the nonce and its place in the request ([`IdempotentRequest`]), so
//!   an event the first attempt did put on the stream is stored once all the same: the claim
//!   answers "already accepted", and the consumer drops a second copy by its id;
//! - the same key with another body answers 422 `IDEMPOTENCY_KEY_REUSED`.
//!
//! 429s are not kept: a rate limit or an exhausted quota passes, and a retry that would get
//! the same 429 for a day could never succeed.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use linktrace_domain::{Environment, ParseError};
use linktrace_platform::error::CommonError;
use linktrace_platform::keys::KeyOwner;
use linktrace_platform::request::{PresentedKey, API_KEY};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::IngestError;
use crate::intake::Intake;

pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
const LINKRUNNER_KEY: HeaderName = HeaderName::from_static("linkrunner-key");

/// How long a key is remembered.
const REMEMBERED_HOURS: i32 = 24;
/// The most a request body may be for its key to be checked (the batch's limit; a larger
/// body is refused by the route anyway).
const MAX_BODY_BYTES: usize = crate::routes::batch::MAX_BODY_BYTES;
/// The most an answer kept for replay may be (a full batch's results are ~100 KB).
const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;

/// 1–255 printable ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(raw: &[u8]) -> Result<Self, ParseError> {
        let printable = raw.iter().all(|b| (0x20..=0x7e).contains(b));
        if raw.is_empty() || raw.len() > 255 || !printable {
            return Err(ParseError::new(
                "Idempotency-Key must be 1-255 printable ASCII characters",
            ));
        }
        Ok(Self(String::from_utf8(raw.to_vec()).expect("ASCII")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a handler needs of an idempotent request: its nonce, from which each of its events
/// takes its id, which is also the key of its dedup claim (`claims::ClaimKey`).
#[derive(Debug, Clone, Copy)]
pub struct IdempotentRequest {
    pub nonce: Uuid,
}

impl IdempotentRequest {
    /// The id of the request's event at `index` (0 for the single-event routes).
    pub fn event_id(&self, index: usize) -> Uuid {
        Uuid::new_v5(&self.nonce, index.to_string().as_bytes())
    }
}

/// What the store says about a request carrying a key.
#[derive(Debug)]
pub enum Seen {
    /// Process it, under this nonce (a first request, or a retry of one never answered).
    Process(IdempotentRequest),
    /// Answered before: give the same answer.
    Answered { status: u16, body: Vec<u8> },
    /// The key was used with another body.
    Reused,
}

pub struct IdempotencyStore {
    pool: PgPool,
}

impl IdempotencyStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    pub async fn begin(
        &self,
        owner: &KeyOwner,
        key: &IdempotencyKey,
        request_hash: &[u8],
    ) -> Result<Seen, sqlx::Error> {
        // A row older than the window is a stranger: taken over with a fresh nonce.
        let row: (Uuid, Vec<u8>, Option<i16>, Option<Vec<u8>>) = sqlx::query_as(
            "INSERT INTO idempotent_requests (account_id, environment, idempotency_key, request_hash, nonce) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (account_id, environment, idempotency_key) DO UPDATE \
               SET request_hash = CASE WHEN idempotent_requests.created_at < now() - make_interval(hours => $6) \
                                       THEN EXCLUDED.request_hash ELSE idempotent_requests.request_hash END, \
                   nonce = CASE WHEN idempotent_requests.created_at < now() - make_interval(hours => $6) \
                                THEN EXCLUDED.nonce ELSE idempotent_requests.nonce END, \
                   status = CASE WHEN idempotent_requests.created_at < now() - make_interval(hours => $6) \
                                 THEN NULL ELSE idempotent_requests.status END, \
                   body = CASE WHEN idempotent_requests.created_at < now() - make_interval(hours => $6) \
                               THEN NULL ELSE idempotent_requests.body END, \
                   created_at = CASE WHEN idempotent_requests.created_at < now() - make_interval(hours => $6) \
                                     THEN now() ELSE idempotent_requests.created_at END \
             RETURNING nonce, request_hash, status, body",
        )
        .bind(owner.account_id)
        .bind(owner.environment.as_str())
        .bind(key.as_str())
        .bind(request_hash)
        .bind(Uuid::new_v4())
        .bind(REMEMBERED_HOURS)
        .fetch_one(&self.pool)
        .await?;
        let (nonce, hash, status, body) = row;
        Ok(if hash != request_hash {
            Seen::Reused
        } else if let (Some(status), Some(body)) = (status, body) {
            Seen::Answered {
                status: status as u16,
                body,
            }
        } else {
            Seen::Process(IdempotentRequest { nonce })
        })
    }

    /// Keeps the answer of the request processed under `nonce`.
    pub async fn answered(
        &self,
        account_id: Uuid,
        environment: Environment,
        key: &IdempotencyKey,
        nonce: Uuid,
        status: StatusCode,
        body: &[u8],
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE idempotent_requests SET status = $5, body = $6 \
             WHERE account_id = $1 AND environment = $2 AND idempotency_key = $3 AND nonce = $4 \
               AND status IS NULL",
        )
        .bind(account_id)
        .bind(environment.as_str())
        .bind(key.as_str())
        .bind(nonce)
        .bind(status.as_u16() as i16)
        .bind(body)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Forgets keys past the window (run now and then by ingest).
    pub async fn sweep(&self) -> Result<u64, sqlx::Error> {
        Ok(sqlx::query(
            "DELETE FROM idempotent_requests WHERE created_at < now() - make_interval(hours => $1)",
        )
        .bind(REMEMBERED_HOURS)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }
}

/// Whether an answer is kept for replay: 2xx and 4xx, but not 429.
fn kept(status: StatusCode) -> bool {
    (status.is_success() || status.is_client_error()) && status != StatusCode::TOO_MANY_REQUESTS
}

/// The layer's function (`axum::middleware::from_fn_with_state`) on the three routes.
pub async fn layer(State(intake): State<Arc<Intake>>, request: Request, next: Next) -> Response {
    let Some(raw) = request.headers().get(IDEMPOTENCY_KEY) else {
        return next.run(request).await;
    };
    let key = match IdempotencyKey::parse(raw.as_bytes()) {
        Ok(key) => key,
        Err(error) => {
            // Read before answering, or the gateway may answer 503 for us (see `discard`).
            linktrace_platform::body_limit::discard(request.into_body()).await;
            return IngestError::validation(error.to_string()).into_response();
        }
    };
    let names: &[HeaderName] = if request.uri().path().ends_with("/capture-event") {
        &[LINKRUNNER_KEY, API_KEY]
    } else {
        &[API_KEY]
    };
    let presented = PresentedKey::from_headers(request.headers(), names);
    let owner = match intake.keys.resolve(presented.secret()).await {
        Ok(Some(owner)) => owner,
        // The route answers 401 itself; nothing is kept for a caller we do not know.
        Ok(None) => return next.run(request).await,
        Err(error) => return IngestError::from(CommonError::Database(error)).into_response(),
    };
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => bytes,
        Err(_) => return IngestError::from(CommonError::PayloadTooLarge).into_response(),
    };
    let mut hash = Sha256::new();
    hash.update(parts.method.as_str().as_bytes());
    hash.update([0]);
    hash.update(parts.uri.path().as_bytes());
    hash.update([0]);
    hash.update(&bytes);
    let hash = hash.finalize();
    let request = match intake.idempotency.begin(&owner, &key, &hash).await {
        Ok(Seen::Process(idempotent)) => {
            let mut request = Request::from_parts(parts, Body::from(bytes));
            request.extensions_mut().insert(idempotent);
            (request, idempotent)
        }
        Ok(Seen::Answered { status, body }) => {
            return replay(status, body);
        }
        Ok(Seen::Reused) => return IngestError::IdempotencyKeyReused.into_response(),
        Err(error) => return IngestError::from(CommonError::Database(error)).into_response(),
    };
    let (request, idempotent) = request;
    let response = next.run(request).await;
    if !kept(response.status()) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let body: Bytes = match axum::body::to_bytes(body, MAX_ANSWER_BYTES).await {
        Ok(body) => body,
        Err(error) => {
            tracing::warn!(%error, "could not read an answer to keep for replay");
            return IngestError::Unavailable(anyhow::anyhow!("answer unreadable")).into_response();
        }
    };
    if let Err(error) = intake
        .idempotency
        .answered(
            owner.account_id,
            owner.environment,
            &key,
            idempotent.nonce,
            parts.status,
            &body,
        )
        .await
    {
        // The answer stands; a retry is processed again under the same nonce, and its
        // events are still stored once.
        tracing::warn!(%error, "could not keep an idempotent answer");
    }
    Response::from_parts(parts, Body::from(body))
}

fn replay(status: u16, body: Vec<u8>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_printable_ascii_of_1_to_255() {
        assert!(IdempotencyKey::parse(b"order-1 retry #2").is_ok());
        assert!(IdempotencyKey::parse(&[b'k'; 255]).is_ok());
        assert!(IdempotencyKey::parse(&[b'k'; 256]).is_err());
        assert!(IdempotencyKey::parse(b"").is_err());
        assert!(IdempotencyKey::parse(b"tab\there").is_err());
        assert!(IdempotencyKey::parse("caf\u{e9}".as_bytes()).is_err());
    }

    #[test]
    fn answers_kept_are_2xx_and_4xx_but_429() {
        assert!(kept(StatusCode::ACCEPTED));
        assert!(kept(StatusCode::BAD_REQUEST));
        assert!(!kept(StatusCode::TOO_MANY_REQUESTS));
        assert!(!kept(StatusCode::SERVICE_UNAVAILABLE));
    }

    #[test]
    fn each_event_of_a_request_has_its_own_stable_id() {
        let request = IdempotentRequest {
            nonce: Uuid::new_v4(),
        };
        assert_eq!(request.event_id(3), request.event_id(3));
        assert_ne!(request.event_id(3), request.event_id(4));
    }
}
