//! The handler built from settings exactly as `serve` builds it, serving on a free loopback port
//! until the test ends.

use std::sync::Arc;

use blob2batch::context::Context;
use blob2batch::startup::Application;

use super::settings::{from_pairs, handler_env};

/// Starts a handler that submits to the fake Batch service at `batch_url`, with `extra` settings
/// on top of [`handler_env`]; returns its base URL.
pub async fn spawn_handler(batch_url: &str, extra: &[(&str, &str)]) -> String {
    let mut pairs = handler_env(batch_url);
    pairs.push(("FUNCTIONS_CUSTOMHANDLER_PORT", "0".into()));
    pairs.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    let settings = from_pairs(&pairs);
    let context = Context::for_serve(settings).await.unwrap();
    let application = Application::build(Arc::new(context)).await.unwrap();
    let address = format!("http://127.0.0.1:{}", application.port());
    tokio::spawn(application.run_until_stopped(std::future::pending()));
    address
}
