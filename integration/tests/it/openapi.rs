//! `/openapi.json` stays true: every documented operation, called anonymously and then with
//! a valid key but an empty body, answers with a status the document lists for it, and
//! every error is the documented envelope.

use linktrace_integration::TestEnv;
use serde_json::{json, Value};

#[tokio::test]
async fn every_documented_operation_answers_as_documented() {
    let env = TestEnv::new().await;
    let ingest = env.spawn_ingest().await;
    let api = env.spawn_api().await;
    let account = env.create_account("scale").await;
    env.create_link(&account, "abcd1234").await;

    let (status, document) = env.get(&api.url("/openapi.json"), None).await;
    assert_eq!(status, 200);
    let (_, from_ingest) = env.get(&ingest.url("/openapi.json"), None).await;
    assert_eq!(
        document, from_ingest,
        "both services serve the same document"
    );

    let paths = document["paths"].as_object().unwrap();
    assert!(paths.contains_key("/api/v1/events") && paths.contains_key("/api/v1/capture-event"));
    let mut checked = 0;
    for (path, operations) in paths {
        for (method, operation) in operations.as_object().unwrap() {
            let documented: Vec<u16> = operation["responses"]
                .as_object()
                .unwrap()
                .keys()
                .map(|k| k.parse().unwrap())
                .collect();
            let concrete = path
                .replace("{shortCode}", "abcd1234")
                .replace("{accountId}", &account.id.to_string())
                .replace("{domain}", "go.example.test");
            let service = if operation["tags"][0] == "ingest" {
                &ingest
            } else {
                &api
            };
            for key in [None, Some(account.live_key.as_str())] {
                let mut request = env.http.request(
                    method.to_uppercase().parse().unwrap(),
                    service.url(&concrete),
                );
                if let Some(key) = key {
                    request = request
                        .header("x-api-key", key)
                        .header("linkrunner-key", key);
                }
                if operation.get("requestBody").is_some() {
                    request = request.json(&json!({}));
                }
                let response = request.send().await.unwrap();
                let status = response.status().as_u16();
                let body = response.text().await.unwrap();
                assert!(
                    documented.contains(&status),
                    "{method} {path} answered {status}, documented {documented:?}: {body}"
                );
                if status >= 400 && !path.starts_with("/l/") {
                    let envelope: Value = serde_json::from_str(&body)
                        .unwrap_or_else(|_| panic!("{method} {path}: not JSON: {body}"));
                    assert_eq!(envelope["success"], false, "{method} {path}: {body}");
                    assert!(envelope["message"].is_string(), "{method} {path}: {body}");
                }
                checked += 1;
            }
        }
    }
    let operations: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(operations, 37, "the routes the services document");
    assert_eq!(checked, 2 * operations);
}

/// `docs/openapi.json` is what the code generates: the routes, request and response types
/// with their `#[utoipa::path]` and schemas. A stale file fails here.
#[test]
fn committed_document_is_the_generated_one() {
    let generated = linktrace_integration::openapi::generate();
    let committed = std::fs::read_to_string(linktrace_integration::openapi::DOCUMENT_PATH)
        .expect("docs/openapi.json");
    assert!(
        generated == committed,
        "docs/openapi.json is stale: run `cargo run -p linktrace-integration --bin linktrace-openapi`"
    );
    let document: Value = serde_json::from_str(&generated).unwrap();
    let mut ids: Vec<&str> = document["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .map(|operation| operation["operationId"].as_str().unwrap())
        .collect();
    let count = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), count, "operation ids are unique");
    // Every schema an operation refers to is defined.
    let schemas = document["components"]["schemas"].as_object().unwrap();
    for reference in generated.split("#/components/schemas/").skip(1) {
        let name: String = reference
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        assert!(
            schemas.contains_key(&name),
            "{name} is referred to but not defined"
        );
    }
}

/// Every endpoint the tests' typed callers call is one the OpenAPI document describes, with
/// that method: a caller method cannot drift from the contract the tests are about.
#[test]
fn every_caller_endpoint_is_documented() {
    let document: Value =
        serde_json::from_str(&linktrace_integration::openapi::generate()).unwrap();
    for endpoint in linktrace_integration::caller::ENDPOINTS {
        let (method, path) = (endpoint.method, endpoint.path);
        let operation = &document["paths"][path][method.to_lowercase()];
        assert!(
            operation.is_object(),
            "{method} {path} is called by the tests but not in the document"
        );
    }
}
