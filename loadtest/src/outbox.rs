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

    /// Up to `max` orders to send now (waiting for some unless closed), the ones waiting too
    /// long moved into `shed`. Empty once the outbox is closed and drained.
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

    fn order(intended: Instant) -> Queued {
        Queued {
            line: Line {
                bytes: Bytes::from_static(b"{}\n"),
                expect: Expect::New { id: Arc::from("x") },
            },
            intended,
            phase: 0,
            refusals: 0,
        }
    }

    #[tokio::test]
    async fn orders_waiting_too_long_are_shed_and_the_rest_taken_in_order() {
        let outbox = Outbox::new(Some(Duration::from_millis(100)), 1);
        let now = Instant::now();
        let old = now - Duration::from_millis(500);
        let mut shed = Vec::new();
        outbox.push([order(old), order(now), order(now)], now, &mut shed);
        assert_eq!(shed.len(), 1);
        shed.clear();
        let taken = outbox.take(1, &mut shed).await;
        assert_eq!(taken.len(), 1);
        assert_eq!(outbox.len(), 1);
        outbox.close();
        assert_eq!(outbox.take(10, &mut shed).await.len(), 1);
        assert!(outbox.take(10, &mut shed).await.is_empty());
    }

    #[tokio::test]
    async fn a_waiting_taker_wakes_on_push() {
        let outbox = Arc::new(Outbox::new(None, 1));
        let taker = {
            let outbox = outbox.clone();
            tokio::spawn(async move { outbox.take(10, &mut Vec::new()).await.len() })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        outbox.push([order(Instant::now())], Instant::now(), &mut Vec::new());
        // A lost wake-up shows as a timeout, not as a test that hangs.
        let taken = tokio::time::timeout(Duration::from_secs(5), taker).await;
        assert_eq!(taken.expect("the taker was woken").unwrap(), 1);
    }
}
