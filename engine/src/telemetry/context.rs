//! The handler context: while a push consumer runs a handler, messages the
//! handler sends inherit the handled message's correlation id, take its id as
//! their causation id, and continue its trace, without the handler copying
//! anything by hand.

use std::future::Future;

tokio::task_local! {
    static CAUSE: Cause;
}

/// The message being handled, as far as follow-up messages care.
#[derive(Clone, Debug)]
pub(crate) struct Cause {
    pub(crate) message_id: String,
    pub(crate) correlation_id: String,
    /// The consumer span's `traceparent`.
    pub(crate) traceparent: Option<crate::envelope::TraceParent>,
    pub(crate) tracestate: Option<String>,
}

/// Runs `future` (a handler) with `cause` as its context.
pub(crate) async fn with_cause<F: Future>(cause: Cause, future: F) -> F::Output {
    CAUSE.scope(cause, future).await
}

/// The message the current task is handling, if any.
pub(crate) fn current_cause() -> Option<Cause> {
    CAUSE.try_with(Cause::clone).ok()
}
