//! Each account's apps, and the two files the link host serves from them so that iOS
//! universal links and Android App Links open the app directly:
//! `/.well-known/apple-app-site-association` and `/.well-known/assetlinks.json`, in the
//! formats Apple and Google document. The shared link host serves every account's links, so
//! its files list the apps of no account unless the operator gave the host to one
//! (`LINK_HOST_ACCOUNT`): otherwise each tenant's app would claim every tenant's links.

use linktrace_domain::{AndroidPackage, AppleTeamId, BundleId, CertFingerprint};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::ApiError;

/// The paths of the link host an app claims: the links' public URLs.
/// The paths links take on the shared host, and on an account's own link domain (where
/// links are root-level `/{shortCode}`).
pub const SHARED_HOST_PATHS: &str = "/l/*";
pub const LINK_DOMAIN_PATHS: &str = "/*";

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IosApp {
    pub team_id: AppleTeamId,
    pub bundle_id: BundleId,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AndroidApp {
    pub package_name: AndroidPackage,
    /// The SHA-256 fingerprints of the app's signing certificates (1-10).
    #[schema(min_items = 1, max_items = 10)]
    #[serde(deserialize_with = "fingerprints")]
    pub sha256_cert_fingerprints: Vec<CertFingerprint>,
}

fn fingerprints<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<CertFingerprint>, D::Error> {
    let list = Vec::<CertFingerprint>::deserialize(deserializer)?;
    if list.is_empty() || list.len() > 10 {
        return Err(serde::de::Error::custom("must list 1-10 fingerprints"));
    }
    Ok(list)
}

/// An account's apps (either may be absent).
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Apps {
    pub ios: Option<IosApp>,
    pub android: Option<AndroidApp>,
}

#[derive(sqlx::FromRow)]
struct AppsRow {
    ios_team_id: Option<String>,
    ios_bundle_id: Option<String>,
    android_package_name: Option<String>,
    android_cert_fingerprints: Vec<String>,
}

impl AppsRow {
    /// Rows were checked when stored; one that no longer parses is left out, not fatal.
    fn apps(self) -> Apps {
        let ios = match (self.ios_team_id, self.ios_bundle_id) {
            (Some(team), Some(bundle)) => AppleTeamId::parse(&team)
                .and_then(|team_id| {
                    Ok(IosApp {
                        team_id,
                        bundle_id: BundleId::parse(&bundle)?,
                    })
                })
                .ok(),
            _ => None,
        };
        let android = self.android_package_name.and_then(|package| {
            Some(AndroidApp {
                package_name: AndroidPackage::parse(&package).ok()?,
                sha256_cert_fingerprints: self
                    .android_cert_fingerprints
                    .iter()
                    .filter_map(|f| CertFingerprint::parse(f).ok())
                    .collect(),
            })
        });
        Apps { ios, android }
    }
}

/// Replaces the account's apps.
pub async fn put(pool: &PgPool, account_id: Uuid, apps: &Apps) -> Result<(), ApiError> {
    let fingerprints: Vec<String> = apps
        .android
        .iter()
        .flat_map(|a| {
            a.sha256_cert_fingerprints
                .iter()
                .map(|f| f.as_str().to_owned())
        })
        .collect();
    sqlx::query(
        "INSERT INTO apps (account_id, ios_team_id, ios_bundle_id, android_package_name, android_cert_fingerprints) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (account_id) DO UPDATE SET ios_team_id = $2, ios_bundle_id = $3, \
           android_package_name = $4, android_cert_fingerprints = $5, updated_at = now()",
    )
    .bind(account_id)
    .bind(apps.ios.as_ref().map(|i| i.team_id.as_str()))
    .bind(apps.ios.as_ref().map(|i| i.bundle_id.as_str()))
    .bind(apps.android.as_ref().map(|a| a.package_name.as_str()))
    .bind(fingerprints)
    .execute(pool)
    .await?;
    Ok(())
}

/// The apps the shared link host lists: those of the account it was given to, if any.
pub async fn of_link_host(pool: &PgPool, account: Option<Uuid>) -> Result<Vec<Apps>, ApiError> {
    let Some(account) = account else {
        return Ok(Vec::new());
    };
    let rows: Vec<AppsRow> = sqlx::query_as(
        "SELECT ios_team_id, ios_bundle_id, android_package_name, android_cert_fingerprints \
           FROM apps WHERE account_id = $1",
    )
    .bind(account)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(AppsRow::apps).collect())
}

/// Apple's `apple-app-site-association`: each iOS app claims the links' paths (the
/// `components` form of iOS 13+, and `paths` for older versions).
pub fn apple_app_site_association(apps: &[Apps], paths: &str) -> Value {
    let details: Vec<Value> = apps
        .iter()
        .filter_map(|a| a.ios.as_ref())
        .map(|ios| {
            let app_id = format!("{}.{}", ios.team_id.as_str(), ios.bundle_id.as_str());
            json!({
                "appIDs": [app_id],
                "components": [{ "/": paths, "comment": "LinkTrace links" }],
                "appID": app_id,
                "paths": [paths],
            })
        })
        .collect();
    json!({ "applinks": { "apps": [], "details": details } })
}

/// Google's Digital Asset Links statement list: each Android app may handle the links.
pub fn assetlinks(apps: &[Apps]) -> Value {
    Value::Array(
        apps.iter()
            .filter_map(|a| a.android.as_ref())
            .filter(|android| !android.sha256_cert_fingerprints.is_empty())
            .map(|android| {
                json!({
                    "relation": ["delegate_permission/common.handle_all_urls"],
                    "target": {
                        "namespace": "android_app",
                        "package_name": android.package_name.as_str(),
                        "sha256_cert_fingerprints": android
                            .sha256_cert_fingerprints
                            .iter()
                            .map(CertFingerprint::as_str)
                            .collect::<Vec<_>>(),
                    }
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_in_apple_and_google_formats() {
        let fingerprint = ["ab"; 32].join(":");
        let apps: Apps = serde_json::from_value(json!({
            "ios": { "teamId": "ABCDE12345", "bundleId": "com.example.app" },
            "android": { "packageName": "com.example.app", "sha256CertFingerprints": [fingerprint] }
        }))
        .unwrap();
        let aasa = apple_app_site_association(&[apps.clone(), Apps::default()], SHARED_HOST_PATHS);
        assert_eq!(
            aasa["applinks"]["details"][0]["appIDs"],
            json!(["ABCDE12345.com.example.app"])
        );
        assert_eq!(aasa["applinks"]["details"][0]["components"][0]["/"], "/l/*");
        assert_eq!(aasa["applinks"]["details"].as_array().unwrap().len(), 1);
        let links = assetlinks(&[apps]);
        assert_eq!(links[0]["target"]["package_name"], "com.example.app");
        assert_eq!(
            links[0]["target"]["sha256_cert_fingerprints"][0],
            ["AB"; 32].join(":")
        );
        assert_eq!(
            links[0]["relation"][0],
            "delegate_permission/common.handle_all_urls"
        );
    }

    #[test]
    fn bodies_are_checked() {
        assert!(serde_json::from_value::<Apps>(
            json!({ "ios": { "teamId": "short", "bundleId": "com.x" } })
        )
        .is_err());
        assert!(serde_json::from_value::<Apps>(
            json!({ "android": { "packageName": "com.x", "sha256CertFingerprints": [] } })
        )
        .is_err());
        assert!(serde_json::from_value::<Apps>(json!({ "windows": {} })).is_err());
    }
}
