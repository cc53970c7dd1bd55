//! Where a chunk's answers come back to the worker that read it.
//!
//! A chunk's orders may be answered by several zones; each zone that answers some of them
//! hands a [`Part`] (its answers' bytes and their places in the chunk) to the chunk's
//! [`Answers`]; the worker gathers the parts and puts them back in input order. The chunk's
//! [`Ticket`] (its admission permits and its `Answers`) is shared by every message carrying
//! its orders: the permits come back when the last of them is done, whether or not the
//! client still listens.

use super::admission::Permit;
use crate::model::Tally;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Where a chunk's answers gather. Zones (or the journal writer, once they are durable)
/// push their parts and count down the lines still missing; only the part that completes
/// the chunk (or the end of its last message) wakes the worker, so a chunk split over seven
/// zones costs the worker one wake-up, not seven. The parts sit behind a mutex, which is
/// never contended for long (a push, a take): a lock-free `SegQueue` allocated and zeroed a
/// block of 31 parts (about 8 KiB) for every chunk, most of which carry one part.
pub struct Answers {
    parts: Mutex<Vec<Part>>,
    /// Lines of the chunk not yet answered by a zone.
    missing: AtomicUsize,
    /// Set when every message of the chunk is done (the ticket is dropped): nothing more
    /// will come, even if lines are missing (a stopped zone actor dropped them).
    closed: AtomicBool,
    done: tokio::sync::Notify,
}

impl Answers {
    pub fn new(missing: usize) -> Arc<Answers> {
        Arc::new(Answers {
            parts: Mutex::new(Vec::new()),
            missing: AtomicUsize::new(missing),
            closed: AtomicBool::new(false),
            done: tokio::sync::Notify::new(),
        })
    }

    /// Hands over one part; wakes the worker if it completes the chunk.
    fn deliver(&self, part: Part) {
        let lines = part.slots.len();
        {
            let mut parts = self
                .parts
                .lock()
                .expect("no panics while the parts are held");
            // Most chunks get one part: room for exactly one at first, not the four `push`
            // makes; a chunk of several zones then grows as a `Vec` does.
            if parts.capacity() == 0 {
                parts.reserve_exact(1);
            }
            parts.push(part);
        }
        if self.missing.fetch_sub(lines, Ordering::AcqRel) == lines {
            self.done.notify_one();
        }
    }

    /// Waits until every line is answered or nothing more can come; then the parts.
    pub async fn gather(&self) -> Vec<Part> {
        while self.missing.load(Ordering::Acquire) > 0 && !self.closed.load(Ordering::Acquire) {
            // A notification sent between the check and this wait is kept (`notify_one`
            // stores a permit), so none is lost.
            self.done.notified().await;
        }
        std::mem::take(
            &mut *self
                .parts
                .lock()
                .expect("no panics while the parts are held"),
        )
    }
}

/// What a chunk's messages share: its permits and where its answers go. Dropped (permits
/// back, the gatherer told) when the last message carrying its orders is done.
pub struct Ticket {
    _permit: Permit,
    answers: Arc<Answers>,
}

impl Ticket {
    pub fn new(permit: Permit, answers: Arc<Answers>) -> Arc<Ticket> {
        Arc::new(Ticket {
            _permit: permit,
            answers,
        })
    }
}

impl Ticket {
    /// Hands over one part of the chunk's answers.
    pub fn deliver(&self, part: Part) {
        self.answers.deliver(part);
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.answers.closed.store(true, Ordering::Release);
        self.answers.done.notify_one();
    }
}

/// Some answers of a chunk, made by one zone (or by the worker, for `invalid` lines).
pub struct Part {
    /// The answers, one JSON line each.
    pub bytes: bytes::Bytes,
    /// `(index in the chunk, start, end)` of each answer in `bytes`.
    pub slots: Vec<(u32, u32, u32)>,
    pub tally: Tally,
    /// When it was made (for the `answer` stage: the hop back to the worker).
    pub made: Instant,
}
