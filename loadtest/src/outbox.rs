//! Orders due and not yet handed to the server.
//!
//! The scheduler pushes orders at their intended times whatever the server does; a
//! connection takes them when it can send. The queue is bounded in time, not length: an
//! order still here `max_queue_ms` after its intended time is shed (never sent, counted as
//! throttled), so a server that stops reading costs the tool at most `rate x max_queue`
//! orders of memory and every shed order is accounted for.

use crate::generate::Line;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// An order on its way.
#[derive(Debug, Clone)]
pub struct Queued {
    pub line: Line,
    /// When it should have been sent: latency runs from here.
    pub intended: Instant,
    /// Index of the phase of its intended time.
    pub phase: u8,
    /// 429 answers it has had (requests transport).
    pub refusals: u32,
}

pub struct Outbox {
    queue: Mutex<VecDeque<Queued>>,
    ready: Notify,
    closed: AtomicBool,
    max_wait: Option<Duration>,
    /// Tasks taking from it (one wake per order is enough up to this many).
    takers: usize,
}

impl Outbox {
    /// `max_wait`: how long an order may wait before it is shed (`None`: never);
    /// `takers`: how many tasks take from it.
    pub fn new(max_wait: Option<Duration>, takers: usize) -> Outbox {
        Outbox {
            queue: Mutex::new(VecDeque::new()),
            ready: Notify::new(),
            closed: AtomicBool::new(false),
            max_wait,
            takers: takers.max(1),
        }
    }

    /// Adds orders in intended order, and moves the ones waiting too long into `shed`.
    pub fn push(
        &self,
        orders: impl IntoIterator<Item = Queued>,
        now: Instant,
        shed: &mut Vec<Queued>,
    ) {
        let mut queue = self
            .queue
            .lock()
            .expect("no panics while the queue is held");
        let before = queue.len();
        queue.extend(orders);
        let added = queue.len() - before;
        self.shed_locked(&mut queue, now, shed);
        drop(queue);
        // One taker woken per order, not every taker per push: many connections share the
        // outbox of the requests transport. A taker between its check and its wait gets
        // the permit `notify_one` stores.
        for _ in 0..added.min(self.takers) {
            self.ready.notify_one();
        }
    }

    fn shed_locked(&self, queue: &mut VecDeque<Queued>, now: Instant, shed: &mut Vec<Queued>) {
        let Some(max_wait) = self.max_wait else {
            return;
        };
        while queue
            .front()
            .is_some_and(|order| now.saturating_duration_since(order.intended) > max_wait)
        {
            shed.extend(queue.pop_front());
        }
    }

    /// Up to `max` orders to send now, the ones waiting too long moved into `shed`. Waits
    /// for some unless the outbox is closed or it shed some (so the caller counts them
    /// without delay): empty then, and always once the outbox is closed and drained.
    pub async fn take(&self, max: usize, shed: &mut Vec<Queued>) -> Vec<Queued> {
        loop {
            let notified = self.ready.notified();
            {
                let mut queue = self
                    .queue
                    .lock()
                    .expect("no panics while the queue is held");
                self.shed_locked(&mut queue, Instant::now(), shed);
                if !queue.is_empty() {
                    let n = queue.len().min(max);
                    return queue.drain(..n).collect();
                }
                if self.closed.load(Ordering::Acquire) {
                    return Vec::new();
                }
                if !shed.is_empty() {
                    return Vec::new();
                }
            }
            notified.await;
        }
    }

    /// No more orders will come: takers drain what is left, then get nothing.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.ready.notify_waiters();
        self.ready.notify_one();
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Orders waiting now.
    pub fn len(&self) -> usize {
        self.queue
            .lock()
            .expect("no panics while the queue is held")
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Everything left (the run is over and it was never sent).
    pub fn drain_all(&self) -> Vec<Queued> {
        self.queue
            .lock()
            .expect("no panics while the queue is held")
            .drain(..)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::{Expect, Line};
    use bytes::Bytes;
    use std::sync::Arc;

    /// An order whose line is `{"n":<n>}`, so tests can tell orders apart.
    fn order(n: u32, intended: Instant) -> Queued {
        Queued {
            line: Line {
                bytes: Bytes::from(format!("{{\"n\":{n}}}\n")),
                expect: Expect::New { id: Arc::from("x") },
            },
            intended,
            phase: 0,
            refusals: 0,
        }
    }

    fn numbers(orders: &[Queued]) -> Vec<String> {
        orders
            .iter()
            .map(|order| String::from_utf8_lossy(&order.line.bytes).trim().to_owned())
            .collect()
    }

    #[tokio::test]
    async fn orders_waiting_too_long_are_shed_and_the_rest_taken_in_order() {
        let outbox = Outbox::new(Some(Duration::from_millis(100)), 1);
        let now = Instant::now();
        let old = now - Duration::from_millis(500);
        let mut shed = Vec::new();
        outbox.push(
            [order(1, old), order(2, now), order(3, now), order(4, now)],
            now,
            &mut shed,
        );
        assert_eq!(numbers(&shed), [r#"{"n":1}"#]);
        shed.clear();
        let taken = outbox.take(2, &mut shed).await;
        assert_eq!(numbers(&taken), [r#"{"n":2}"#, r#"{"n":3}"#]);
        assert_eq!(outbox.len(), 1);
        outbox.close();
        assert_eq!(numbers(&outbox.take(10, &mut shed).await), [r#"{"n":4}"#]);
        assert!(outbox.take(10, &mut shed).await.is_empty());
        assert!(shed.is_empty());
    }

    #[tokio::test]
    async fn a_taker_sheds_what_waited_too_long_and_returns_so_it_is_counted() {
        let outbox = Outbox::new(Some(Duration::from_millis(100)), 1);
        let now = Instant::now();
        outbox.push([order(1, now)], now, &mut Vec::new());
        // Pushed in time, then left waiting past `max_wait`: the taker sheds it and comes
        // back empty-handed instead of waiting for more, so its caller counts it now.
        let later = now - Duration::from_millis(500);
        outbox.queue.lock().unwrap()[0].intended = later;
        let mut shed = Vec::new();
        let taken = tokio::time::timeout(Duration::from_secs(5), outbox.take(10, &mut shed))
            .await
            .expect("a taker that shed something returns");
        assert!(taken.is_empty());
        assert_eq!(numbers(&shed), [r#"{"n":1}"#]);
    }

    #[tokio::test]
    async fn a_waiting_taker_wakes_on_push() {
        let outbox = Outbox::new(None, 1);
        let mut shed = Vec::new();
        let mut taker = std::pin::pin!(outbox.take(10, &mut shed));
        // Polled once, it finds nothing and waits: the push below must wake it.
        assert!(futures_util::poll!(taker.as_mut()).is_pending());
        outbox.push([order(1, Instant::now())], Instant::now(), &mut Vec::new());
        // A lost wake-up shows as a timeout, not as a test that hangs.
        let taken = tokio::time::timeout(Duration::from_secs(5), taker)
            .await
            .expect("the taker was woken");
        assert_eq!(numbers(&taken), [r#"{"n":1}"#]);
    }
}
