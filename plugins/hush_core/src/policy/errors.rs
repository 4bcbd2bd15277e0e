//! Where an error frame goes: each one concerns exactly one part of the
//! client, a subscription or a send, or none that it knows.
//!
//! hush-relay's errors carry a code and name what they are about: a send by
//! its `client_message_id`, a subscription by its `thread_id` [ext]. A stock
//! server's errors name nothing; its send refusals are told by their message
//! and belong to the oldest send in flight (stock sends are stop-and-wait).

use super::outbox::{SendRefusal, send_refusal};
use crate::ids::ThreadId;
use crate::wire::{ErrorCode, ErrorFrame};

/// Which send a refusal is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendRef {
    /// The send with this `client_message_id` [ext].
    ClientId(String),
    /// The oldest send in flight (a stock server).
    Oldest,
}

/// What an error frame concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Concern {
    /// The subscription to this thread failed.
    Subscription(ThreadId),
    /// A send was refused, and what that means for it.
    Send { send: SendRef, refusal: SendRefusal },
    /// Nothing this client can act on (it is logged).
    Unknown,
}

impl ErrorFrame {
    /// The [ext] code, if it is one this client knows.
    pub fn error_code(&self) -> Option<ErrorCode> {
        self.code.as_deref().and_then(ErrorCode::parse)
    }

    /// Where this frame goes.
    pub fn concerns(&self) -> Concern {
        let code = self.error_code();
        let send = match (&self.client_message_id, &self.code) {
            (Some(cmid), _) => SendRef::ClientId(cmid.clone()),
            (None, None) => SendRef::Oldest,
            (None, Some(_)) => {
                let about_subscription = matches!(
                    code,
                    Some(ErrorCode::SubscriptionLimit | ErrorCode::InvalidThreadId)
                );
                return match self.thread_id.as_deref().map(ThreadId::parse) {
                    Some(Ok(t)) if about_subscription => Concern::Subscription(t),
                    _ => Concern::Unknown,
                };
            }
        };
        match send_refusal(code, &self.message) {
            Some(refusal) => Concern::Send { send, refusal },
            None => Concern::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::outbox::Retry;

    const T: &str = "6f9619ff-8b86-d011-b42d-00c04fc964ff";

    fn frame(
        message: &str,
        code: Option<&str>,
        cmid: Option<&str>,
        thread: Option<&str>,
    ) -> ErrorFrame {
        ErrorFrame {
            message: message.into(),
            code: code.map(Into::into),
            client_message_id: cmid.map(Into::into),
            thread_id: thread.map(Into::into),
        }
    }

    #[test]
    fn a_coded_refusal_naming_its_send_goes_to_that_send() {
        let c = frame("slow down", Some("rate_limited"), Some("c-1"), Some(T)).concerns();
        let Concern::Send { send, refusal } = c else {
            panic!("{c:?}")
        };
        assert_eq!(send, SendRef::ClientId("c-1".into()));
        assert_eq!(refusal.retry, Retry::Transient);
        assert!(!refusal.thread_missing);
        let c = frame("no", Some("thread_not_found"), Some("c-2"), None).concerns();
        assert!(matches!(c, Concern::Send { refusal, .. } if refusal.thread_missing));
        let c = frame("big", Some("payload_too_large"), Some("c-3"), None).concerns();
        assert!(matches!(c, Concern::Send { refusal, .. } if refusal.retry == Retry::Permanent));
    }

    #[test]
    fn a_subscription_error_goes_to_the_subscription_only() {
        let t = ThreadId::parse(T).unwrap();
        for code in ["subscription_limit", "invalid_thread_id"] {
            assert_eq!(
                frame("x", Some(code), None, Some(T)).concerns(),
                Concern::Subscription(t)
            );
        }
        // Without a readable thread it concerns nothing known.
        assert_eq!(
            frame("x", Some("subscription_limit"), None, Some("nope")).concerns(),
            Concern::Unknown
        );
        // Another coded error without a client id is no send's either.
        assert_eq!(
            frame("x", Some("unknown_type"), None, Some(T)).concerns(),
            Concern::Unknown
        );
    }

    #[test]
    fn a_stock_servers_refusal_is_the_oldest_sends_when_its_message_says_so() {
        let c = frame("Thread not found", None, None, None).concerns();
        assert!(matches!(
            c,
            Concern::Send { send: SendRef::Oldest, refusal } if refusal.thread_missing
        ));
        let c = frame("Failed to save message", None, None, None).concerns();
        assert!(
            matches!(c, Concern::Send { send: SendRef::Oldest, refusal } if refusal.retry == Retry::Transient)
        );
        // A stock subscription error is nobody's send.
        assert_eq!(
            frame("Invalid thread_id", None, None, None).concerns(),
            Concern::Unknown
        );
    }

    #[test]
    fn a_code_this_client_does_not_know_leaves_the_send_to_its_ack_timeout() {
        // Neither failed (it may be fine) nor lost: it stays in flight and
        // goes again when its ack does not come.
        let c = frame("?", Some("something_new"), Some("c-9"), None).concerns();
        assert_eq!(c, Concern::Unknown);
    }
}
