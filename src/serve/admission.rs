//! Admission control: how much the service takes in before it pushes back.
//!
//! Two bounds, both from `[limits]`:
//! - **Orders in flight** (`max_orders_in_flight`): orders read from request bodies and not
//!   yet decided, over every connection. A chunk of a stream takes one permit per order
//!   before it goes to the zone actors; they come back once every order of the chunk is decided,
//!   whatever became of the client. When none are free the stream waits: its body is not
//!   read, so TCP pushes back on the sender. The last `priority_reserve` permits are for
//!   priority chunks only (any express, same-day or VIP order in them): under pressure,
//!   standard traffic waits first.
//! - **Streams** (`max_streams`): NDJSON streams read at once. One more is answered `429`
//!   with `Retry-After`, as is a single JSON order (standard) that finds no permit free.
//!
//! Two fair (FIFO) semaphores do it without a lock or a retry loop: every chunk takes its
//! permits from `all` (capacity `max_orders_in_flight`); a standard chunk first takes as many
//! from `standard` (capacity `max_orders_in_flight - priority_reserve`), so standard work can
//! never hold the reserve, and waiting standard chunks are served in arrival order.
//!
//! An order that got its permit is always decided.

use super::metrics::names;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Shared by every worker.
pub struct Admission {
    all: Arc<Semaphore>,
    standard: Arc<Semaphore>,
    capacity: usize,
    reserve: usize,
    streams: AtomicUsize,
    max_streams: usize,
}

/// The permits of one admitted chunk; given back when dropped.
pub struct Permit {
    _all: OwnedSemaphorePermit,
    _standard: Option<OwnedSemaphorePermit>,
}

/// An open stream's place; the count goes down on drop.
pub struct StreamSlot(Arc<Admission>);

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.streams.fetch_sub(1, Ordering::AcqRel);
        metrics::gauge!(names::STREAMS_OPEN).decrement(1.0);
    }
}

impl Admission {
    pub fn new(capacity: usize, reserve: usize, max_streams: usize) -> Self {
        let capacity = capacity.max(1);
        let reserve = reserve.min(capacity - 1);
        Admission {
            all: Arc::new(Semaphore::new(capacity)),
            standard: Arc::new(Semaphore::new(capacity - reserve)),
            capacity,
            reserve,
            streams: AtomicUsize::new(0),
            max_streams,
        }
    }

    /// Orders in flight now.
    pub fn in_flight(&self) -> usize {
        self.capacity - self.all.available_permits()
    }

    /// Streams open now.
    pub fn streams(&self) -> usize {
        self.streams.load(Ordering::Acquire)
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
                    metrics::gauge!(names::STREAMS_OPEN).increment(1.0);
                    return Some(StreamSlot(self.clone()));
                }
                Err(now) => open = now,
            }
        }
    }

    /// How many permits a chunk of `orders` takes: all of them, but never more than a chunk
    /// of its class could ever get (a huge chunk is admitted once that many are free).
    fn wanted(&self, orders: usize, priority: bool) -> u32 {
        let ceiling = if priority {
            self.capacity
        } else {
            self.capacity - self.reserve
        };
        orders.clamp(1, ceiling) as u32
    }

    /// Permits for a chunk, without waiting: `None` if a chunk of its class must wait.
    pub fn try_admit(&self, orders: usize, priority: bool) -> Option<Permit> {
        let wanted = self.wanted(orders, priority);
        let standard = if priority {
            None
        } else {
            Some(self.standard.clone().try_acquire_many_owned(wanted).ok()?)
        };
        let all = self.all.clone().try_acquire_many_owned(wanted).ok()?;
        Some(Permit {
            _all: all,
            _standard: standard,
        })
    }

    /// Permits for a chunk, waiting (in arrival order) as long as it takes.
    pub async fn admit(&self, orders: usize, priority: bool) -> Permit {
        let wanted = self.wanted(orders, priority);
        let standard = if priority {
            None
        } else {
            Some(
                self.standard
                    .clone()
                    .acquire_many_owned(wanted)
                    .await
                    .expect("the semaphore is never closed"),
            )
        };
        let all = self
            .all
            .clone()
            .acquire_many_owned(wanted)
            .await
            .expect("the semaphore is never closed");
        Permit {
            _all: all,
            _standard: standard,
        }
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
        drop(priority);
        drop(standard);
        assert_eq!(admission.in_flight(), 0);
        // Priority work may use the whole capacity; standard work then waits for it.
        let priority = admission.try_admit(10, true).expect("everything");
        assert!(admission.try_admit(1, false).is_none());
        drop(priority);
        // A chunk larger than its class could ever get is admitted whole when idle, taking
        // what its class may take.
        let huge = admission.try_admit(1000, false).expect("an idle service");
        assert_eq!(admission.in_flight(), 6);
        drop(huge);
    }

    #[test]
    fn streams_beyond_the_limit_are_refused_until_one_closes() {
        let admission = Arc::new(Admission::new(10, 0, 2));
        let first = admission.open_stream().expect("one");
        let _second = admission.open_stream().expect("two");
        assert!(admission.open_stream().is_none());
        assert_eq!(admission.streams(), 2);
        drop(first);
        assert!(admission.open_stream().is_some());
    }

    #[test]
    fn waiting_chunks_go_in_arrival_order_as_soon_as_permits_come_back() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        runtime.block_on(async {
            let admission = Arc::new(Admission::new(4, 1, 1));
            let held = admission.try_admit(3, false).expect("3 open permits");
            let (order_tx, mut order_rx) = tokio::sync::mpsc::unbounded_channel();
            let mut waiters = Vec::new();
            // A large chunk first, then a small one: the small one must not overtake it.
            for (name, size) in [("large", 3), ("small", 1)] {
                let admission = admission.clone();
                let order_tx = order_tx.clone();
                waiters.push(tokio::spawn(async move {
                    let permit = admission.admit(size, false).await;
                    order_tx.send(name).unwrap();
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    drop(permit);
                }));
                tokio::task::yield_now().await;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            assert!(
                order_rx.try_recv().is_err(),
                "no permits yet: both must wait"
            );
            // Dropping the permits (a client gone, say) wakes the waiters: no release call.
            drop(held);
            for waiter in waiters {
                tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
                    .await
                    .expect("woken")
                    .expect("ran");
            }
            assert_eq!(order_rx.recv().await, Some("large"));
            assert_eq!(order_rx.recv().await, Some("small"));
        });
    }
}
