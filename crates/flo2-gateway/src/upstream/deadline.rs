//! One timer per upstream attempt, shared by its phases (answer head, body or first token, error
//! body).
//!
//! A `tokio::time::timeout` per phase inserts a timer entry into the runtime's wheel and removes
//! it again, under the wheel's lock, two or three times per request. One entry, registered on
//! the first phase and polled by every later one, is inserted once per attempt, and the phases
//! share one budget by construction.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::time::{Instant, Sleep};

/// The attempt's deadline has passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Elapsed;

/// A deadline that several futures can be run against in turn.
pub struct Deadline(Pin<Box<Sleep>>);

impl Deadline {
    /// A deadline at `until`.
    pub fn at(until: Instant) -> Self {
        Self(Box::pin(tokio::time::sleep_until(until)))
    }

    /// Runs `work` until it finishes or the deadline passes, whichever is first. `work` is
    /// polled first, so work that is ready at the deadline still counts.
    pub fn run<F: Future>(&mut self, work: F) -> Run<'_, F> {
        Run {
            work,
            deadline: &mut self.0,
        }
    }
}

pin_project_lite::pin_project! {
    /// [`Deadline::run`]'s future. A struct rather than an `async fn`, which would keep `work`
    /// twice (the argument and the awaited state) in every attempt's future.
    pub struct Run<'d, F> {
        #[pin]
        work: F,
        deadline: &'d mut Pin<Box<Sleep>>,
    }
}

impl<F: Future> Future for Run<'_, F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(output) = this.work.poll(cx) {
            return Poll::Ready(Ok(output));
        }
        this.deadline.as_mut().poll(cx).map(|()| Err(Elapsed))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn phases_share_one_deadline() {
        let mut deadline = Deadline::at(Instant::now() + Duration::from_millis(100));
        assert_eq!(deadline.run(async { 1 }).await, Ok(1));
        let slow = tokio::time::sleep(Duration::from_millis(60));
        assert_eq!(deadline.run(slow).await, Ok(()));
        // 60 ms of the 100 are gone: a second 60 ms phase runs out.
        let slower = tokio::time::sleep(Duration::from_millis(60));
        assert_eq!(deadline.run(slower).await, Err(Elapsed));
        // Once passed, it stays passed, but ready work still wins.
        assert_eq!(deadline.run(async { 2 }).await, Ok(2));
        assert_eq!(
            deadline.run(std::future::pending::<()>()).await,
            Err(Elapsed)
        );
    }
}
