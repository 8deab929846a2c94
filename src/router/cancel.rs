//! Waiting for a [`CancellationToken`] beside a connection that is polled on every wakeup.
//!
//! A connection task selects between its connection and its listener's token, so the token's
//! future is polled each time the connection is: twice per proxied HTTP request, once per
//! chunk an L4 connection copies. `CancellationToken::cancelled()` takes the token's lock and
//! re-registers its waker on every poll (about 250 instructions, callgrind). [`Cancelled`]
//! registers once; later polls by the same task only read the token's state, and only a
//! different waker (the future moved to another task) registers again.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// Resolves when the token is cancelled; cheap to poll while it is not.
#[derive(Debug)]
pub struct Cancelled {
    token: CancellationToken,
    /// Registered with the token (pinned: it sits in the token's list of waiters).
    wait: Pin<Box<WaitForCancellationFutureOwned>>,
    /// The waker `wait` was last polled with.
    registered: Option<Waker>,
}

impl Cancelled {
    /// Waits for `token`.
    pub fn new(token: &CancellationToken) -> Self {
        Cancelled {
            token: token.clone(),
            wait: Box::pin(token.clone().cancelled_owned()),
            registered: None,
        }
    }
}

impl Future for Cancelled {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if let Some(waker) = &this.registered
            && waker.will_wake(cx.waker())
        {
            // Registered with this waker: cancelling the token wakes it.
            return if this.token.is_cancelled() {
                Poll::Ready(())
            } else {
                Poll::Pending
            };
        }
        let polled = this.wait.as_mut().poll(cx);
        if polled.is_pending() {
            this.registered = Some(cx.waker().clone());
        }
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::Cancelled;
    use crate::wake_count::WakeCount;
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll};
    use tokio_util::sync::CancellationToken;

    #[test]
    fn a_cancel_wakes_the_registered_task_and_then_resolves() {
        let token = CancellationToken::new();
        let mut cancelled = pin!(Cancelled::new(&token));
        let (count, waker) = WakeCount::waker();
        let mut cx = Context::from_waker(&waker);
        for _ in 0..3 {
            assert!(cancelled.as_mut().poll(&mut cx).is_pending());
        }
        token.cancel();
        assert_eq!(count.get(), 1);
        assert_eq!(cancelled.as_mut().poll(&mut cx), Poll::Ready(()));
    }

    #[test]
    fn another_waker_is_registered_again() {
        let token = CancellationToken::new();
        let mut cancelled = pin!(Cancelled::new(&token));
        let (first, first_waker) = WakeCount::waker();
        let (second, second_waker) = WakeCount::waker();
        for waker in [&first_waker, &second_waker] {
            assert!(
                cancelled
                    .as_mut()
                    .poll(&mut Context::from_waker(waker))
                    .is_pending()
            );
        }
        token.cancel();
        assert_eq!(first.get(), 0);
        assert_eq!(second.get(), 1, "the task polling it last is woken");
    }
}
