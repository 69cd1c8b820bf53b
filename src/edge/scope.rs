//! The request span around everything Pingora does for one request.
//!
//! Pingora reads a request header, calls `new_ctx`, then runs our phases, the cache storage and
//! its own code inside one future. The edge service is wrapped ([`Scoped`]) so that the span
//! made in `new_ctx` ([`adopt`]) is entered on every poll of that future from then on: every
//! log line of the request (our phases, cache storage errors, Pingora's own lines) and every
//! child span carries it. Making the span in `new_ctx` rather than around the whole future
//! keeps the wait for the next request on a kept-alive connection out of it.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use async_trait::async_trait;
use pingora::apps::{HttpServerApp, HttpServerOptions, ReusedHttpStream};
use pingora::protocols::Stream;
use pingora::protocols::http::ServerSession;
use pingora::protocols::http::v2::server::H2Options;
use pingora::server::ShutdownWatch;
use tracing::Span;

/// An HTTP application whose requests each run inside their request span.
pub struct Scoped<A>(Arc<A>);

impl<A> Scoped<A> {
    /// Wraps `app`.
    pub fn new(app: A) -> Self {
        Self(Arc::new(app))
    }
}

/// The span of the request being processed, once `new_ctx` has made it.
#[derive(Default)]
struct Slot(OnceLock<Span>);

thread_local! {
    /// The slot of the request whose future is being polled on this thread.
    static POLLING: RefCell<Option<Arc<Slot>>> = const { RefCell::new(None) };
}

/// Makes `span` the span of the request being processed on this thread and enters it for the
/// rest of this poll; later polls enter it too. `false` outside a [`Scoped`] request (a
/// background subrequest) or when the request already has one.
pub fn adopt(span: &Span) -> bool {
    POLLING.with(|p| {
        let polling = p.borrow();
        let Some(slot) = polling.as_ref() else {
            return false;
        };
        if slot.0.set(span.clone()).is_err() {
            return false;
        }
        enter(span);
        true
    })
}

fn enter(span: &Span) {
    span.with_subscriber(|(id, dispatch)| dispatch.enter(id));
}

fn exit(span: &Span) {
    span.with_subscriber(|(id, dispatch)| dispatch.exit(id));
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A request's future, polled with its span entered.
struct InSpan<'a, T> {
    inner: BoxFuture<'a, T>,
    slot: Arc<Slot>,
}

impl<T> Future for InSpan<'_, T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let this = &mut *self;
        if let Some(span) = this.slot.0.get() {
            enter(span);
        }
        let previous = POLLING.with(|p| p.replace(Some(this.slot.clone())));
        // Undone on the way out even if the request panics: the thread serves other requests.
        let _restore = Restore {
            slot: &this.slot,
            previous,
        };
        this.inner.as_mut().poll(cx)
    }
}

/// Leaves the span (entered at the start of the poll or by [`adopt`] during it) and restores
/// the thread's previous slot.
struct Restore<'a> {
    slot: &'a Slot,
    previous: Option<Arc<Slot>>,
}

impl Drop for Restore<'_> {
    fn drop(&mut self) {
        POLLING.with(|p| *p.borrow_mut() = self.previous.take());
        if let Some(span) = self.slot.0.get() {
            exit(span);
        }
    }
}

#[async_trait]
impl<A> HttpServerApp for Scoped<A>
where
    A: HttpServerApp + Send + Sync + 'static,
{
    async fn process_new_http(
        self: &Arc<Self>,
        session: ServerSession,
        shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        InSpan {
            inner: self.0.process_new_http(session, shutdown),
            slot: Arc::default(),
        }
        .await
    }

    fn h2_options(&self) -> Option<H2Options> {
        self.0.h2_options()
    }

    fn server_options(&self) -> Option<&HttpServerOptions> {
        self.0.server_options()
    }

    async fn http_cleanup(&self) {
        self.0.http_cleanup().await
    }

    async fn process_custom_session(
        self: Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        self.0
            .clone()
            .process_custom_session(stream, shutdown)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A future that adopts a span on its first poll and yields once.
    struct Request {
        polls: u32,
        seen: Vec<Option<String>>,
    }

    impl Future for Request {
        type Output = Vec<Option<String>>;

        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
            if self.polls == 0 {
                assert!(adopt(&tracing::error_span!("request")));
                assert!(
                    !adopt(&tracing::error_span!("second")),
                    "one span per request"
                );
            }
            let current = Span::current().metadata().map(|m| m.name().to_string());
            self.seen.push(current);
            self.polls += 1;
            if self.polls < 2 {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            Poll::Ready(std::mem::take(&mut self.seen))
        }
    }

    #[test]
    fn span_entered_from_adoption_on() {
        let subscriber = tracing_subscriber::registry();
        tracing::subscriber::with_default(subscriber, || {
            assert!(!adopt(&tracing::error_span!("outside")), "no request");
            let fut = InSpan {
                inner: Box::pin(Request {
                    polls: 0,
                    seen: Vec::new(),
                }),
                slot: Arc::default(),
            };
            let seen = block_on(fut);
            assert_eq!(seen, [Some("request".into()), Some("request".into())]);
            assert!(Span::current().is_none(), "left after the last poll");
        });
    }

    /// A minimal executor for the test (the span logic is executor-independent).
    fn block_on<F: Future>(fut: F) -> F::Output {
        let mut fut = std::pin::pin!(fut);
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        loop {
            if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
                return v;
            }
        }
    }
}
