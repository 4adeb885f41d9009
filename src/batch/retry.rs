//! Retry policy: which answers are worth another attempt, how long to wait, and the budget that
//! bounds a whole logical call.
//!
//! Event Grid waits about 30 s for an answer before it counts a delivery as failed, so every
//! logical call (all attempts and the sleeps between them) must end well before that: a caller
//! that runs out of budget answers 503 and lets Event Grid redeliver.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use time::OffsetDateTime;
use tokio::time::Instant;

use super::error::BatchConfigError;
use crate::headers::header_str;

/// The longest a logical call may take, attempts and waits included.
pub(crate) const MAX_RETRY_BUDGET: Duration = Duration::from_secs(20);

/// Backoff and budget of the Batch client, in the manner of the Azure SDK's `RetryOptions`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryOptions {
    /// Total time for one logical call, attempts and waits included; at most [`MAX_RETRY_BUDGET`].
    pub budget: Duration,
    /// Upper bound of the first wait (the waits are drawn uniformly below a doubling cap).
    pub initial_delay: Duration,
    /// Upper bound of any computed wait; a server's `Retry-After` is honoured even if longer.
    pub max_delay: Duration,
}

impl Default for RetryOptions {
    fn default() -> Self {
        RetryOptions {
            budget: MAX_RETRY_BUDGET,
            initial_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl RetryOptions {
    pub(crate) fn validate(&self) -> Result<(), BatchConfigError> {
        if self.budget > MAX_RETRY_BUDGET {
            return Err(BatchConfigError::RetryBudgetTooLong {
                budget: self.budget,
                max: MAX_RETRY_BUDGET,
            });
        }
        if self.budget.is_zero() {
            return Err(BatchConfigError::InvalidRetryOptions(
                "the budget must be positive".into(),
            ));
        }
        if self.initial_delay > self.max_delay {
            return Err(BatchConfigError::InvalidRetryOptions(
                "initial_delay exceeds max_delay".into(),
            ));
        }
        Ok(())
    }

    /// Exponential backoff with full jitter: a uniform draw in `[0, min(max, initial * 2^(n-1))]`
    /// for the `n`-th retry. Full jitter spreads the retries of many concurrent invocations that
    /// were throttled together.
    pub(crate) fn backoff(&self, retry: u32) -> Duration {
        let cap = self.backoff_cap(retry);
        let cap_micros = u64::try_from(cap.as_micros()).unwrap_or(u64::MAX);
        Duration::from_micros(fastrand::u64(0..=cap_micros))
    }

    pub(crate) fn backoff_cap(&self, retry: u32) -> Duration {
        let exponent = retry.saturating_sub(1).min(31);
        self.initial_delay
            .saturating_mul(1u32 << exponent)
            .min(self.max_delay)
    }
}

/// Whether waiting `wait` from now still ends before `deadline`. A wait too long to represent
/// (a server may ask for anything) does not.
pub(crate) fn fits_before(wait: Duration, deadline: Instant) -> bool {
    Instant::now()
        .checked_add(wait)
        .is_some_and(|end| end < deadline)
}

/// 429 and the 5xx answers that mean "try again" (a 501 will not change by retrying).
pub(crate) fn is_retryable_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 500 | 502 | 503 | 504)
}

/// The wait a server asked for: `retry-after-ms` and `x-ms-retry-after-ms` (milliseconds) first,
/// then `Retry-After` as seconds or as an HTTP-date (relative to `now`). A wait too long for a
/// `Duration` is [`Duration::MAX`]: longer than any budget.
pub(crate) fn server_retry_after(headers: &HeaderMap, now: OffsetDateTime) -> Option<Duration> {
    for name in ["retry-after-ms", "x-ms-retry-after-ms"] {
        if let Some(ms) = header_str(headers, name).and_then(|v| v.trim().parse::<f64>().ok())
            && ms >= 0.0
        {
            return Some(Duration::try_from_secs_f64(ms / 1000.0).unwrap_or(Duration::MAX));
        }
    }
    let value = header_str(headers, "retry-after")?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = parse_http_date(value)?;
    let wait = at - now;
    Some(if wait.is_negative() {
        Duration::ZERO
    } else {
        wait.unsigned_abs()
    })
}

const HTTP_DATE: &[time::format_description::BorrowedFormatItem<'static>] = time::macros::format_description!(
    "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
);

/// RFC 1123 ("IMF-fixdate"), the form of `ocp-date` and of `Retry-After` dates.
pub(crate) fn format_http_date(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(HTTP_DATE)
        .unwrap_or_default()
}

pub(crate) fn parse_http_date(value: &str) -> Option<OffsetDateTime> {
    time::PrimitiveDateTime::parse(value, HTTP_DATE)
        .ok()
        .map(|t| t.assume_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn defaults_stay_inside_the_maximum_budget() {
        let options = RetryOptions::default();
        assert_eq!(options.budget, Duration::from_secs(20));
        options.validate().unwrap();
        let too_long = RetryOptions {
            budget: Duration::from_secs(21),
            ..RetryOptions::default()
        };
        assert!(matches!(
            too_long.validate(),
            Err(BatchConfigError::RetryBudgetTooLong { .. })
        ));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_jitters_below_it() {
        let options = RetryOptions::default();
        assert_eq!(options.backoff_cap(1), Duration::from_millis(200));
        assert_eq!(options.backoff_cap(2), Duration::from_millis(400));
        assert_eq!(options.backoff_cap(5), Duration::from_millis(3200));
        assert_eq!(options.backoff_cap(6), Duration::from_secs(5));
        assert_eq!(options.backoff_cap(100), Duration::from_secs(5));
        for retry in 1..10 {
            assert!(options.backoff(retry) <= options.backoff_cap(retry));
        }
    }

    #[test]
    fn retryable_statuses() {
        for s in [429, 500, 502, 503, 504] {
            assert!(is_retryable_status(StatusCode::from_u16(s).unwrap()));
        }
        for s in [400, 403, 404, 409, 413, 501] {
            assert!(!is_retryable_status(StatusCode::from_u16(s).unwrap()));
        }
    }

    #[test]
    fn retry_after_in_its_three_forms() {
        let now = datetime!(2026-03-14 09:31:09 UTC);
        assert_eq!(
            server_retry_after(&headers(&[("retry-after", "2")]), now),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            server_retry_after(
                &headers(&[("retry-after", "Sat, 14 Mar 2026 09:31:12 GMT")]),
                now
            ),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            server_retry_after(
                &headers(&[("retry-after", "Sat, 14 Mar 2026 09:00:00 GMT")]),
                now
            ),
            Some(Duration::ZERO)
        );
        assert_eq!(
            server_retry_after(
                &headers(&[("retry-after", "2"), ("retry-after-ms", "1500")]),
                now
            ),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            server_retry_after(&headers(&[("x-ms-retry-after-ms", "250")]), now),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            server_retry_after(&headers(&[("retry-after", "soon")]), now),
            None
        );
        assert_eq!(server_retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn waits_too_long_for_a_duration_are_longer_than_any_budget() {
        let now = datetime!(2026-03-14 09:31:09 UTC);
        for (name, value) in [
            ("retry-after-ms", "1e300"),
            ("retry-after-ms", "inf"),
            ("x-ms-retry-after-ms", "18446744073709551616000"),
        ] {
            assert_eq!(
                server_retry_after(&headers(&[(name, value)]), now),
                Some(Duration::MAX),
                "{name}: {value}"
            );
        }
        assert_eq!(
            server_retry_after(&headers(&[("retry-after", "18446744073709551615")]), now),
            Some(Duration::from_secs(u64::MAX))
        );
        assert_eq!(
            server_retry_after(&headers(&[("retry-after-ms", "NaN")]), now),
            None
        );
    }

    #[tokio::test]
    async fn only_waits_that_end_before_the_deadline_fit() {
        let deadline = Instant::now() + Duration::from_secs(5);
        assert!(fits_before(Duration::from_millis(10), deadline));
        assert!(!fits_before(Duration::from_secs(6), deadline));
        assert!(!fits_before(Duration::from_secs(u64::MAX), deadline));
        assert!(!fits_before(Duration::MAX, deadline));
    }

    #[test]
    fn http_dates_round_trip() {
        let at = datetime!(2026-03-14 09:31:09 UTC);
        assert_eq!(format_http_date(at), "Sat, 14 Mar 2026 09:31:09 GMT");
        assert_eq!(parse_http_date("Sat, 14 Mar 2026 09:31:09 GMT"), Some(at));
    }
}
