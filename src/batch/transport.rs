//! One logical Batch request on the wire: its attempts, their authorization, and the retries
//! between them inside a deadline.
//!
//! Every logical call gets one `client-request-id` that all its attempts share, so the service's
//! logs tie the attempts together. A failed call becomes a [`BatchError`] in one place,
//! [`Call::failure`], whichever way it failed.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::TokenCredential;
use reqwest::header::{
    ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue,
};
use reqwest::{Method, StatusCode};
use time::OffsetDateTime;
use tokio::time::Instant;
use tracing::{Instrument, debug, warn};
use url::Url;

use super::credential::BATCH_SCOPE;
use super::error::BatchError;
use super::retry::{
    RetryOptions, fits_before, format_http_date, is_retryable_status, server_retry_after,
};
use super::shared_key::SharedKeySigner;
use crate::error_chain::error_chain;
use crate::headers::header_str;

/// Content type of every request body, as the service documents it (and as Shared Key signs it).
pub(crate) const ODATA_JSON: &str = "application/json; odata=minimalmetadata";

/// How requests are authorized.
pub(crate) enum Auth {
    SharedKey(SharedKeySigner),
    Token(Arc<dyn TokenCredential>),
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::SharedKey(signer) => signer.fmt(f),
            Auth::Token(_) => f.write_str("Token(..)"),
        }
    }
}

/// The HTTP side of a client: connection pool, authorization, retry policy.
#[derive(Debug)]
pub(crate) struct Transport {
    pub(crate) http: reqwest::Client,
    pub(crate) auth: Auth,
    pub(crate) retry: RetryOptions,
    /// Limit of one attempt; never more than what is left of the deadline.
    pub(crate) request_timeout: Duration,
}

/// One logical request; its attempts differ only in `ocp-date` and the authorization.
pub(crate) struct Call {
    pub(crate) operation: &'static str,
    pub(crate) method: Method,
    pub(crate) url: Url,
    pub(crate) body: Option<Vec<u8>>,
    pub(crate) client_request_id: String,
}

/// An answer that is final for its call: a success or a refusal retrying will not change.
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
    /// Which attempt of its logical call produced this reply.
    pub(crate) attempt: u32,
}

/// What one attempt means for its logical call.
enum Judged {
    /// The call ends with this: a success, a permanent refusal, or a failure already retried.
    Final(Result<Reply, BatchError>),
    /// Worth another attempt, after the wait the server asked for if it did.
    Retry(BatchError, Option<Duration>),
    /// No answer within the attempt's time.
    TimedOut,
}

fn timed_out(timeout: Duration) -> BatchError {
    BatchError::transient(format!("no answer within {} ms", timeout.as_millis()))
}

/// Why one attempt produced no answer.
enum AttemptError {
    Http(reqwest::Error),
    Credential(azure_core::Error),
}

impl Call {
    pub(crate) fn new(
        operation: &'static str,
        method: Method,
        url: Url,
        body: Option<Vec<u8>>,
    ) -> Self {
        Call {
            operation,
            method,
            url,
            body,
            client_request_id: uuid::Uuid::new_v4().to_string(),
        }
    }

    /// Marks an error of this call with what an operator needs to trace it: our
    /// `client-request-id` and how many attempts were made.
    pub(crate) fn failure(&self, mut error: BatchError, attempts: u32) -> BatchError {
        error.client_request_id = Some(self.client_request_id.clone());
        error.attempts = attempts;
        error
    }

    /// The error for an answer that is not a success: status, headers and body say what it is.
    pub(crate) fn refused(&self, reply: &Reply) -> BatchError {
        let error = BatchError::from_response(reply.status, &reply.headers, &reply.body);
        self.failure(error, reply.attempt)
    }
}

impl Transport {
    /// Runs the attempts of one logical call: returns the first answer that is not worth a retry
    /// (success or a permanent refusal), or the last transient failure once the next wait would
    /// end after `deadline`.
    pub(crate) async fn execute(
        &self,
        call: &Call,
        deadline: Instant,
    ) -> Result<Reply, BatchError> {
        let span = tracing::debug_span!(
            "batch_call",
            operation = call.operation,
            client_request_id = %call.client_request_id,
        );
        self.execute_attempts(call, deadline).instrument(span).await
    }

    async fn execute_attempts(&self, call: &Call, deadline: Instant) -> Result<Reply, BatchError> {
        let mut attempt: u32 = 0;
        let mut previous: Option<BatchError> = None;
        loop {
            attempt += 1;
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                let error = BatchError::transient("retry budget exhausted before sending");
                return Err(call.failure(error, attempt - 1));
            }
            let timeout = self.request_timeout.min(remaining);
            let started = Instant::now();
            let outcome = tokio::time::timeout(timeout, self.attempt(call)).await;
            let latency_ms = started.elapsed().as_millis() as u64;
            let (error, server_wait) = match self.judge(call, attempt, outcome, latency_ms) {
                Judged::Final(result) => return result,
                Judged::Retry(error, wait) => (error, wait),
                Judged::TimedOut if timeout < self.request_timeout && previous.is_some() => {
                    // Cut short by what was left of the budget rather than by the attempt
                    // timeout: the failure before it (a 503, a refused connection) says more.
                    let mut error = previous.take().unwrap_or_else(|| timed_out(timeout));
                    error.attempts = attempt;
                    return Err(error);
                }
                Judged::TimedOut => (call.failure(timed_out(timeout), attempt), None),
            };
            let wait = server_wait.unwrap_or_else(|| self.retry.backoff(attempt));
            if !fits_before(wait, deadline) {
                warn!(
                    operation = call.operation,
                    attempt,
                    status = error.status,
                    code = error.code.as_deref(),
                    wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                    "Batch call gives up: the next wait would exceed the retry budget"
                );
                return Err(error);
            }
            warn!(
                operation = call.operation,
                attempt,
                status = error.status,
                code = error.code.as_deref(),
                delay_ms = wait.as_millis() as u64,
                error = %error_chain(&error),
                "retrying Batch call"
            );
            previous = Some(error);
            tokio::time::sleep(wait).await;
        }
    }

    /// What one attempt's outcome means for its call.
    fn judge(
        &self,
        call: &Call,
        attempt: u32,
        outcome: Result<Result<Reply, AttemptError>, tokio::time::error::Elapsed>,
        latency_ms: u64,
    ) -> Judged {
        let path = call.url.path();
        match outcome {
            Ok(Ok(mut reply)) => {
                reply.attempt = attempt;
                debug!(
                    method = %call.method,
                    path,
                    status = reply.status.as_u16(),
                    request_id = header_str(&reply.headers, "request-id"),
                    attempt,
                    latency_ms,
                    "Batch HTTP call"
                );
                if !is_retryable_status(reply.status) {
                    return Judged::Final(Ok(reply));
                }
                let wait = server_retry_after(&reply.headers, OffsetDateTime::now_utc());
                Judged::Retry(call.refused(&reply), wait)
            }
            Ok(Err(AttemptError::Credential(source))) => {
                // The credential retries on its own; a failure here is already final.
                let mut error =
                    BatchError::transient("cannot get an Entra ID token").with_source(source);
                error.code = Some("CredentialUnavailable".into());
                let error = call.failure(error, attempt);
                warn!(attempt, error = %error_chain(&error), "Batch call failed: no token");
                Judged::Final(Err(error))
            }
            Ok(Err(AttemptError::Http(source))) => {
                let source = source.without_url();
                debug!(
                    method = %call.method, path, attempt, latency_ms,
                    error = %error_chain(&source), "Batch HTTP call failed"
                );
                if source.is_builder() {
                    let error = BatchError::permanent("InvalidRequest", "cannot build the request")
                        .with_source(source);
                    return Judged::Final(Err(call.failure(error, attempt)));
                }
                let error = BatchError::transient("no answer").with_source(source);
                Judged::Retry(call.failure(error, attempt), None)
            }
            Err(_elapsed) => {
                debug!(
                    method = %call.method, path, attempt, latency_ms,
                    "Batch HTTP call timed out"
                );
                Judged::TimedOut
            }
        }
    }

    async fn attempt(&self, call: &Call) -> Result<Reply, AttemptError> {
        let mut headers = HeaderMap::with_capacity(8);
        headers.insert(
            HeaderName::from_static("ocp-date"),
            HeaderValue::try_from(format_http_date(OffsetDateTime::now_utc()))
                .expect("dates are header text"),
        );
        headers.insert(
            HeaderName::from_static("client-request-id"),
            HeaderValue::try_from(call.client_request_id.as_str()).expect("uuids are header text"),
        );
        headers.insert(
            HeaderName::from_static("return-client-request-id"),
            HeaderValue::from_static("true"),
        );
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        if let Some(body) = &call.body {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(ODATA_JSON));
            headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        }
        let authorization = match &self.auth {
            Auth::SharedKey(signer) => signer.authorization(&call.method, &call.url, &headers),
            Auth::Token(credential) => {
                let token = credential
                    .get_token(&[BATCH_SCOPE], None)
                    .await
                    .map_err(AttemptError::Credential)?;
                let mut value = HeaderValue::try_from(format!("Bearer {}", token.token.secret()))
                    .map_err(|_| {
                    AttemptError::Credential(azure_core::Error::with_message(
                        azure_core::error::ErrorKind::Credential,
                        "the token is not valid header text",
                    ))
                })?;
                value.set_sensitive(true);
                value
            }
        };
        headers.insert(AUTHORIZATION, authorization);

        let mut request = self
            .http
            .request(call.method.clone(), call.url.clone())
            .headers(headers);
        if let Some(body) = &call.body {
            request = request.body(body.clone());
        }
        let mut response = request.send().await.map_err(AttemptError::Http)?;
        let status = response.status();
        let headers = std::mem::take(response.headers_mut());
        let body = response.bytes().await.map_err(AttemptError::Http)?.to_vec();
        Ok(Reply {
            status,
            headers,
            body,
            attempt: 0,
        })
    }
}
