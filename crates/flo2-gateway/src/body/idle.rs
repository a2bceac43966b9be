//! A request body with an idle limit: a body that stops arriving for longer than the limit
//! ends with [`BodyStalled`], so a client trickling (or withholding) its body cannot hold a
//! connection, a handler and its buffers for as long as it likes. The `/v1` extractor answers
//! such a body with 408 in the caller's shape; the connection is then closed, its body unread.
//!
//! The timer exists only while the body is waited for: most bodies arrive with their head, and
//! those never create one.

use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::Sleep;

/// The body stopped arriving for longer than its idle limit.
#[derive(Debug, thiserror::Error)]
#[error("the request body stopped arriving for {0:?}")]
pub struct BodyStalled(pub Duration);

impl BodyStalled {
    /// Whether `error`, or an error it wraps, is a [`BodyStalled`].
    pub fn is_cause_of(error: &(dyn std::error::Error + 'static)) -> bool {
        std::iter::successors(Some(error), |e| e.source()).any(|e| e.is::<BodyStalled>())
    }
}

pin_project_lite::pin_project! {
    /// `inner` with an idle limit between its frames.
    pub struct IdleBody<B> {
        #[pin]
        inner: B,
        limit: Duration,
        timer: Option<Pin<Box<Sleep>>>,
        // Whether the timer runs from the last frame (false: it is reset at the next wait).
        armed: bool,
    }
}

impl<B> IdleBody<B> {
    /// `inner`, ended with [`BodyStalled`] when no frame arrives within `limit`.
    pub fn new(inner: B, limit: Duration) -> Self {
        Self {
            inner,
            limit,
            timer: None,
            armed: false,
        }
    }
}

impl<B> Body for IdleBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.project();
        match this.inner.poll_frame(cx) {
            Poll::Ready(frame) => {
                *this.armed = false;
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                let deadline = tokio::time::Instant::now() + *this.limit;
                let timer = match this.timer {
                    Some(timer) => {
                        if !*this.armed {
                            timer.as_mut().reset(deadline);
                        }
                        timer
                    }
                    None => this
                        .timer
                        .insert(Box::pin(tokio::time::sleep_until(deadline))),
                };
                *this.armed = true;
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyStalled(*this.limit))))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt as _;

    type Chunk = Result<Frame<Bytes>, std::io::Error>;

    #[tokio::test]
    async fn a_body_that_stops_arriving_ends_with_an_error() {
        let (tx, rx) = tokio::sync::mpsc::channel::<Chunk>(4);
        let body = http_body_util::StreamBody::new(tokio_stream_shim(rx));
        let idle = IdleBody::new(body, Duration::from_millis(300));
        tx.send(Ok(Frame::data(Bytes::from_static(b"ab"))))
            .await
            .unwrap();
        let collected = tokio::spawn(async move { idle.collect().await });
        tokio::time::sleep(Duration::from_millis(100)).await;
        tx.send(Ok(Frame::data(Bytes::from_static(b"cd"))))
            .await
            .unwrap();
        // The second frame came within the limit; then nothing more.
        let err = collected.await.unwrap().unwrap_err();
        assert!(BodyStalled::is_cause_of(&*err), "{err}");
        drop(tx);
    }

    #[tokio::test]
    async fn a_body_that_keeps_arriving_is_read_whole() {
        let (tx, rx) = tokio::sync::mpsc::channel::<Chunk>(4);
        let body = http_body_util::StreamBody::new(tokio_stream_shim(rx));
        // Frames 500 ms apart under a 2 s limit: 2.5 s in all, longer than the limit.
        let idle = IdleBody::new(body, Duration::from_secs(2));
        let collected = tokio::spawn(async move { idle.collect().await });
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            tx.send(Ok(Frame::data(Bytes::from_static(b"x"))))
                .await
                .unwrap();
        }
        drop(tx);
        let bytes = collected.await.unwrap().unwrap().to_bytes();
        assert_eq!(&bytes[..], b"xxxxx");
    }

    fn tokio_stream_shim(
        mut rx: tokio::sync::mpsc::Receiver<Chunk>,
    ) -> impl futures_util::Stream<Item = Chunk> {
        futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
    }
}
