use serde::{Deserialize, Serialize};

/// The machine-readable `code` of an error envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    ValidationError,
    Unauthorized,
    Forbidden,
    PlanUpgradeRequired,
    LinkNotFound,
    NotFound,
    ShortCodeTaken,
    DomainTaken,
    PayloadTooLarge,
    QuotaExceeded,
    IdempotencyKeyReused,
    RateLimited,
    Unavailable,
    InternalError,
}

/// The one error body every endpoint answers with:
/// `{"success": false, "message": …, "code": …, "resetsOn": …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorEnvelope {
    /// Always false.
    pub success: bool,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<ErrorCode>,
    /// Only on 429 QUOTA_EXCEEDED: the 1st of next month, 00:00:00.000Z.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub resets_on: Option<String>,
}

impl ErrorEnvelope {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            success: false,
            message: message.into(),
            code: Some(code),
            resets_on: None,
        }
    }

    pub fn quota_exceeded(resets_on: String) -> Self {
        Self {
            success: false,
            message: "Monthly event quota exceeded".to_owned(),
            code: Some(ErrorCode::QuotaExceeded),
            resets_on: Some(resets_on),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_to_documented_shape() {
        let body = serde_json::to_value(ErrorEnvelope::quota_exceeded(
            "2026-12-01T00:00:00.000Z".into(),
        ))
        .unwrap();
        assert_eq!(body["success"], false);
        assert_eq!(body["code"], "QUOTA_EXCEEDED");
        assert_eq!(body["resetsOn"], "2026-12-01T00:00:00.000Z");
        let plain = serde_json::to_value(ErrorEnvelope::new(ErrorCode::LinkNotFound, "x")).unwrap();
        assert_eq!(plain["code"], "LINK_NOT_FOUND");
        assert!(plain.get("resetsOn").is_none());
    }
}
