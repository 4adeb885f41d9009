//! Request bodies read whole, within a size limit and a time limit, with errors each route can
//! answer in its own shape.
//!
//! axum's `Bytes` extractor enforces `DefaultBodyLimit` but answers in plain text, which the
//! Functions host cannot read; [`ReadBody`] enforces the same limit and leaves the answer to the
//! route. The time limit is put on the body by the server ([`Deadline`], started when the head has
//! arrived), so that it holds for every route, whichever extractor reads the body.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use futures_util::StreamExt;
use http_body::{Frame, SizeHint};
use tokio::time::Sleep;

use super::error::ApiError;
use crate::config::HttpSettings;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The largest body [`ReadBody`] accepts, put into each request's extensions by the router.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BodyLimit(pub usize);

impl Default for BodyLimit {
    fn default() -> BodyLimit {
        BodyLimit(HttpSettings::default().max_body_bytes)
    }
}

/// A request body, read whole.
#[derive(Debug)]
pub struct ReadBody(pub Bytes);

/// Why a body could not be read. None of these can succeed on a retry of the same request, and
/// the body is left partly unread, so the connection is closed after the answer.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("the request body is larger than the {0} bytes accepted")]
    TooLarge(usize),
    #[error("the request body did not arrive within {} s", .0.as_secs())]
    TimedOut(Duration),
    #[error("the request body could not be read")]
    Unreadable,
}

impl BodyError {
    pub fn status(&self) -> StatusCode {
        match self {
            BodyError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::TimedOut(_) => StatusCode::REQUEST_TIMEOUT,
            BodyError::Unreadable => StatusCode::BAD_REQUEST,
        }
    }
}

impl From<BodyError> for ApiError {
    fn from(error: BodyError) -> ApiError {
        match error {
            BodyError::TooLarge(_) => ApiError::TooLarge(error.to_string()),
            BodyError::TimedOut(_) => ApiError::TimedOut(error.to_string()),
            BodyError::Unreadable => ApiError::BadRequest(error.to_string()),
        }
    }
}

impl IntoResponse for BodyError {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}

impl<S: Send + Sync> FromRequest<S> for ReadBody {
    type Rejection = BodyError;

    async fn from_request(request: Request, _state: &S) -> Result<ReadBody, BodyError> {
        let BodyLimit(limit) = request
            .extensions()
            .get::<BodyLimit>()
            .copied()
            .unwrap_or_default();
        read_body(request.into_body(), limit).await.map(ReadBody)
    }
}

/// Reads `body` whole, refusing it as soon as it is known to exceed `limit` bytes: at once when
/// its declared length does, so that an oversized upload is not received first.
pub(crate) async fn read_body(body: Body, limit: usize) -> Result<Bytes, BodyError> {
    let declared = body.size_hint().lower();
    if declared > limit as u64 {
        return Err(BodyError::TooLarge(limit));
    }
    let mut stream = body.into_data_stream();
    // A declared length is a claim, not bytes: reserve for it only up to a modest size, so that
    // connections announcing large bodies and sending nothing hold no memory.
    let mut buffer = BytesMut::with_capacity(declared.min(64 * 1024) as usize);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|error| cause(&error))?;
        if buffer.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge(limit));
        }
        buffer.extend_from_slice(&chunk);
    }
    Ok(buffer.freeze())
}

fn cause(error: &axum::Error) -> BodyError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(error) = source {
        if let Some(timed_out) = error.downcast_ref::<BodyTimedOut>() {
            return BodyError::TimedOut(timed_out.0);
        }
        source = error.source();
    }
    BodyError::Unreadable
}

/// The error a [`Deadline`] body ends with.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {} s", .0.as_secs())]
pub(crate) struct BodyTimedOut(pub Duration);

/// A body that fails with [`BodyTimedOut`] once its time is up. The clock runs from when the
/// wrapper is made, not per read: a client trickling a byte at a time gains nothing.
pub(crate) struct Deadline<B> {
    body: B,
    sleep: Pin<Box<Sleep>>,
    after: Duration,
}

impl<B> Deadline<B> {
    pub fn new(body: B, after: Duration) -> Deadline<B> {
        Deadline {
            body,
            sleep: Box::pin(tokio::time::sleep(after)),
            after,
        }
    }
}

impl<B> HttpBody for Deadline<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.body).poll_frame(cx) {
            return Poll::Ready(frame.map(|frame| frame.map_err(Into::into)));
        }
        match this.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimedOut(this.after))))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::stream;

    fn chunked(chunks: Vec<Result<&'static [u8], BoxError>>) -> Body {
        Body::from_stream(stream::iter(
            chunks.into_iter().map(|c| c.map(Bytes::from_static)),
        ))
    }

    #[tokio::test]
    async fn a_declared_length_above_the_limit_is_refused_before_reading() {
        let body = Body::from(vec![b'x'; 11]);
        assert_eq!(read_body(body, 10).await, Err(BodyError::TooLarge(10)));
        let body = Body::from(vec![b'x'; 10]);
        assert_eq!(read_body(body, 10).await.unwrap().len(), 10);
    }

    #[tokio::test]
    async fn an_undeclared_body_is_refused_when_it_grows_past_the_limit() {
        let body = chunked(vec![Ok(b"12345"), Ok(b"67890")]);
        assert_eq!(&read_body(body, 10).await.unwrap()[..], b"1234567890");
        let body = chunked(vec![Ok(b"12345"), Ok(b"67890"), Ok(b"!")]);
        assert_eq!(read_body(body, 10).await, Err(BodyError::TooLarge(10)));
    }

    #[tokio::test]
    async fn a_deadline_error_is_told_apart_from_other_failures() {
        let timed_out = chunked(vec![
            Ok(b"12"),
            Err(Box::new(BodyTimedOut(Duration::from_secs(7)))),
        ]);
        assert_eq!(
            read_body(timed_out, 10).await,
            Err(BodyError::TimedOut(Duration::from_secs(7)))
        );
        let broken = chunked(vec![Err("connection reset".into())]);
        assert_eq!(read_body(broken, 10).await, Err(BodyError::Unreadable));
    }

    #[tokio::test]
    async fn a_deadline_body_ends_with_its_error_when_time_is_up() {
        // Never yields a frame, as a client that sent its head and then nothing.
        let silent = Body::from_stream(stream::pending::<Result<Bytes, BoxError>>());
        let after = Duration::from_millis(5);
        let body = Body::new(Deadline::new(silent, after));
        assert_eq!(read_body(body, 10).await, Err(BodyError::TimedOut(after)));
        let complete = Body::new(Deadline::new(Body::from("done"), after));
        assert_eq!(&read_body(complete, 10).await.unwrap()[..], b"done");
    }
}
