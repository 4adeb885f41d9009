//! One way to print an error with its causes, for logs and for the lines a command prints.
//!
//! Errors keep their sources; this walks them once, so that "retry policy expired" also says what
//! kept failing (a host name that does not resolve, a refused connection) without repeating a cause
//! that a wrapper's message already includes.

use std::error::Error;

/// `error: cause: cause's cause`, skipping a cause whose text the line already holds.
pub fn error_chain(error: &(dyn Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !cause_text.is_empty() && !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{message}")]
    struct Wrapper {
        message: String,
        #[source]
        source: Option<Box<dyn Error + Send + Sync>>,
    }

    fn wrap(message: &str, source: Option<Box<dyn Error + Send + Sync>>) -> Wrapper {
        Wrapper {
            message: message.into(),
            source,
        }
    }

    #[test]
    fn causes_are_named_once_in_order() {
        let dns = std::io::Error::other("dns error: no records found for no-such-host.invalid");
        let send = wrap("failed to send", Some(Box::new(dns)));
        let expired = wrap("retry policy expired", Some(Box::new(send)));
        assert_eq!(
            error_chain(&expired),
            "retry policy expired: failed to send: dns error: no records found for no-such-host.invalid"
        );
    }

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let io = std::io::Error::other("connection refused");
        let wrapper = wrap("cannot connect: connection refused", Some(Box::new(io)));
        assert_eq!(error_chain(&wrapper), "cannot connect: connection refused");
        assert_eq!(error_chain(&wrap("alone", None)), "alone");
    }
}
