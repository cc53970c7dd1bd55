//! An append-only list in fixed-size chunks shared by reference count: cloning it shares
//! every chunk (one reference-count increment per 4,096 items), and a write into a chunk
//! that a clone still holds copies that chunk alone (copy on write, `Arc::make_mut`).
//!
//! A zone keeps every order it decided in one; a snapshot clones the zone's state and
//! encodes the clone on another thread while the zone goes on. With a plain `Vec` that
//! clone copied every record: 200-270 ms for 500,000 orders, a stall of the zone as long as
//! the encoding it was meant to take off it. Here it costs microseconds; while the
//! snapshot holds the chunks, the zone's next append copies the last (partial) chunk once,
//! and a cancel or shipment of an older order copies that order's chunk once.

use crate::limits::ARENA_CHUNK_RECORDS;
use std::sync::Arc;

#[derive(Debug)]
pub struct Arena<T> {
    chunks: Vec<Arc<Vec<T>>>,
    len: usize,
}

impl<T> Default for Arena<T> {
    fn default() -> Self {
        Arena {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Clone for Arena<T> {
    /// Shares the chunks: no item is copied.
    fn clone(&self) -> Self {
        Arena {
            chunks: self.chunks.clone(),
            len: self.len,
        }
    }
}

impl<T: Clone> Arena<T> {
    pub fn push(&mut self, item: T) {
        if self.len.is_multiple_of(ARENA_CHUNK_RECORDS) {
            self.chunks
                .push(Arc::new(Vec::with_capacity(ARENA_CHUNK_RECORDS)));
        }
        let last = self.chunks.last_mut().expect("a chunk was just ensured");
        Arc::make_mut(last).push(item);
        self.len += 1;
    }

    /// The item at `index`, to change; copies its chunk first if a clone shares it.
    pub fn get_mut(&mut self, index: usize) -> &mut T {
        assert!(
            index < self.len,
            "index {index} of an arena of {}",
            self.len
        );
        &mut Arc::make_mut(&mut self.chunks[index / ARENA_CHUNK_RECORDS])
            [index % ARENA_CHUNK_RECORDS]
    }
}

impl<T> Arena<T> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.chunks.iter().flat_map(|chunk| chunk.iter())
    }
}

impl<T> std::ops::Index<usize> for Arena<T> {
    type Output = T;

    #[inline]
    fn index(&self, index: usize) -> &T {
        &self.chunks[index / ARENA_CHUNK_RECORDS][index % ARENA_CHUNK_RECORDS]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clone_keeps_what_it_saw_while_the_original_goes_on() {
        let mut arena = Arena::default();
        for item in 0..(ARENA_CHUNK_RECORDS * 2 + 10) {
            arena.push(item);
        }
        let snapshot = arena.clone();
        // Shared, not copied.
        assert!(Arc::ptr_eq(&arena.chunks[0], &snapshot.chunks[0]));
        *arena.get_mut(5) = 1_000_000;
        arena.push(7);
        // The write copied the first chunk only; the clone still sees the old values.
        assert!(!Arc::ptr_eq(&arena.chunks[0], &snapshot.chunks[0]));
        assert!(Arc::ptr_eq(&arena.chunks[1], &snapshot.chunks[1]));
        assert_eq!(snapshot[5], 5);
        assert_eq!(arena[5], 1_000_000);
        assert_eq!(snapshot.len(), ARENA_CHUNK_RECORDS * 2 + 10);
        assert_eq!(arena.len(), ARENA_CHUNK_RECORDS * 2 + 11);
        assert_eq!(arena[ARENA_CHUNK_RECORDS * 2 + 10], 7);
        let items: Vec<usize> = snapshot.iter().copied().collect();
        assert_eq!(items, (0..ARENA_CHUNK_RECORDS * 2 + 10).collect::<Vec<_>>());
        assert_eq!(arena.iter().count(), arena.len());
    }
}
