//! A proxy on loopback in front of the test Azurite that answers 503 (`ServerBusy`, as the
//! service does when it is overloaded) to the requests a test picks and forwards the rest, so
//! that a storage failure can be aimed at one container while the others work.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::http::{Request, Response, StatusCode};

/// Which requests fail: by the start of their path (e.g. `/devstoreaccount1/output`).
pub struct StorageProxy {
    /// The account's blob endpoint through the proxy, e.g. `http://127.0.0.1:PORT/devstoreaccount1`.
    pub url: String,
    failed: Arc<Mutex<HashSet<String>>>,
}

impl StorageProxy {
    /// The distinct paths (query left out) of the requests answered 503 so far.
    pub fn failed_paths(&self) -> HashSet<String> {
        self.failed.lock().unwrap().clone()
    }
}

/// Starts a proxy to `upstream` (`http://127.0.0.1:PORT`, no account) that fails every request
/// whose path starts with `failing_prefix`.
pub async fn start(upstream: &str, account: &str, failing_prefix: &str) -> StorageProxy {
    let failed: Arc<Mutex<HashSet<String>>> = Arc::default();
    let state = (
        upstream.trim_end_matches('/').to_string(),
        failing_prefix.to_string(),
        failed.clone(),
        reqwest::Client::new(),
    );
    let app = axum::Router::new().fallback(move |request: Request<Body>| {
        let (upstream, prefix, failed, client) = state.clone();
        async move { answer(request, &upstream, &prefix, &failed, &client).await }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    StorageProxy {
        url: format!("http://127.0.0.1:{port}/{account}"),
        failed,
    }
}

async fn answer(
    request: Request<Body>,
    upstream: &str,
    failing_prefix: &str,
    failed: &Mutex<HashSet<String>>,
    client: &reqwest::Client,
) -> Response<Body> {
    let path = request.uri().path().to_string();
    if path.starts_with(failing_prefix) {
        failed.lock().unwrap().insert(path);
        return Response::builder()
            .status(StatusCode::SERVICE_UNAVAILABLE)
            .header("x-ms-error-code", "ServerBusy")
            .header("content-type", "application/xml")
            .body(Body::from(
                "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>ServerBusy</Code>\
                 <Message>The server is currently unable to receive requests.</Message></Error>",
            ))
            .unwrap();
    }
    let target = format!(
        "{upstream}{}",
        request.uri().path_and_query().map_or("/", |p| p.as_str())
    );
    let (parts, body) = request.into_parts();
    let body: Bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let mut forward = client.request(parts.method, target).body(body);
    for (name, value) in &parts.headers {
        if name != "host" {
            forward = forward.header(name, value);
        }
    }
    let upstream_response = forward.send().await.unwrap();
    let mut response = Response::builder().status(upstream_response.status());
    for (name, value) in upstream_response.headers() {
        // Hop-by-hop: the proxy's own connection decides these.
        if name != "transfer-encoding" && name != "connection" {
            response = response.header(name, value);
        }
    }
    response
        .body(Body::from(upstream_response.bytes().await.unwrap()))
        .unwrap()
}
