//! Admission control: how much the service takes in before it pushes back.
//!
//! Two bounds, both from `[limits]`:
//! - **Orders in flight** (`max_orders_in_flight`): orders read from request bodies and not
//!   yet answered, over every connection. A chunk of a stream takes one permit per order
//!   before it goes to the shard and gives them back once answered. When none are left the
//!   stream waits: its body is not read, so TCP pushes back on the sender. The last
//!   `priority_reserve` permits are for priority chunks only (any express, same-day or VIP
//!   order in them): under pressure, standard traffic waits first.
//! - **Streams** (`max_streams`): NDJSON streams read at once. One more is answered `429`
//!   with `Retry-After`, as is a single JSON order (standard) that finds no permit free.
//!
//! An order that got its permit is always decided and answered.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// Shared by every worker.
pub struct Admission {
    permits: Arc<Semaphore>,
    capacity: usize,
    reserve: usize,
    /// Woken whenever permits come back, so waiting standard chunks look again.
    released: Notify,
    streams: AtomicUsize,
    max_streams: usize,
}

/// An open stream's place; the count goes down on drop.
pub struct StreamSlot(Arc<Admission>);

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.streams.fetch_sub(1, Ordering::AcqRel);
        metrics::gauge!("router_streams_open").decrement(1.0);
    }
}

impl Admission {
    pub fn new(capacity: usize, reserve: usize, max_streams: usize) -> Self {
        let capacity = capacity.max(1);
        Admission {
            permits: Arc::new(Semaphore::new(capacity)),
            capacity,
            reserve: reserve.min(capacity - 1),
            released: Notify::new(),
            streams: AtomicUsize::new(0),
            max_streams,
        }
    }

    /// Orders in flight now.
    pub fn in_flight(&self) -> usize {
        self.capacity - self.permits.available_permits()
    }

    /// A place for one more stream, or `None` when `max_streams` are open.
    pub fn open_stream(self: &Arc<Self>) -> Option<StreamSlot> {
        let mut open = self.streams.load(Ordering::Acquire);
        loop {
            if open >= self.max_streams {
                return None;
            }
            match self.streams.compare_exchange_weak(
                open,
                open + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    metrics::gauge!("router_streams_open").increment(1.0);
                    return Some(StreamSlot(self.clone()));
                }
                Err(now) => open = now,
            }
        }
    }

    /// How many permits a chunk of `orders` takes: all of them, but never more than a chunk
    /// of its class could ever get (a huge chunk is admitted whole when the service is idle).
    fn wanted(&self, orders: usize, priority: bool) -> u32 {
        let ceiling = if priority {
            self.capacity
        } else {
            self.capacity - self.reserve
        };
        orders.clamp(1, ceiling) as u32
    }

    /// Permits for a chunk, without waiting: `None` if a chunk of its class must wait.
    pub fn try_admit(&self, orders: usize, priority: bool) -> Option<OwnedSemaphorePermit> {
        let wanted = self.wanted(orders, priority);
        let floor = if priority { 0 } else { self.reserve };
        if self.permits.available_permits() < wanted as usize + floor {
            return None;
        }
        self.permits.clone().try_acquire_many_owned(wanted).ok()
    }

    /// Permits for a chunk, waiting as long as it takes.
    pub async fn admit(&self, orders: usize, priority: bool) -> OwnedSemaphorePermit {
        if priority {
            let wanted = self.wanted(orders, true);
            return self
                .permits
                .clone()
                .acquire_many_owned(wanted)
                .await
                .expect("the semaphore is never closed");
        }
        loop {
            let released = self.released.notified();
            if let Some(permit) = self.try_admit(orders, false) {
                return permit;
            }
            released.await;
        }
    }

    /// Gives permits back (dropping them) and wakes waiting chunks.
    pub fn release(&self, permit: OwnedSemaphorePermit) {
        drop(permit);
        self.released.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_work_leaves_the_reserve_to_priority_work() {
        let admission = Admission::new(10, 4, 1);
        let standard = admission
            .try_admit(6, false)
            .expect("6 of the 6 open permits");
        assert_eq!(admission.in_flight(), 6);
        // Only the reserve is left: standard work waits, priority work goes ahead.
        assert!(admission.try_admit(1, false).is_none());
        let priority = admission.try_admit(4, true).expect("the reserve");
        assert!(admission.try_admit(1, true).is_none());
        admission.release(priority);
        admission.release(standard);
        assert_eq!(admission.in_flight(), 0);
        // A chunk larger than its class could ever get is admitted whole when idle, taking
        // what its class may take.
        let huge = admission.try_admit(1000, false).expect("an idle service");
        assert_eq!(admission.in_flight(), 6);
        admission.release(huge);
    }

    #[test]
    fn streams_beyond_the_limit_are_refused_until_one_closes() {
        let admission = Arc::new(Admission::new(10, 0, 2));
        let first = admission.open_stream().expect("one");
        let _second = admission.open_stream().expect("two");
        assert!(admission.open_stream().is_none());
        drop(first);
        assert!(admission.open_stream().is_some());
    }

    #[test]
    fn a_waiting_chunk_goes_as_soon_as_permits_come_back() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        runtime.block_on(async {
            let admission = Arc::new(Admission::new(4, 1, 1));
            let held = admission.try_admit(3, false).expect("3 open permits");
            let waiting = {
                let admission = admission.clone();
                tokio::spawn(async move { admission.admit(2, false).await.num_permits() })
            };
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            assert!(!waiting.is_finished(), "no permits yet: it must wait");
            admission.release(held);
            let granted = tokio::time::timeout(std::time::Duration::from_secs(5), waiting).await;
            assert_eq!(granted.expect("woken").expect("ran"), 2);
        });
    }
}
