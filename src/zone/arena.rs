//! An append-only list in fixed-size chunks shared by reference count: cloning it shares
//! every chunk (one reference-count increment per 4,096 items), and a write into a chunk
//! that a clone still holds copies that chunk alone (copy on write, `Arc::make_mut`).
//!
//! A zone keeps the orders it decided in one; a snapshot clones the zone's state and
//! encodes the clone on another thread while the zone goes on. With a plain `Vec` that
//! clone copied every record: 200-270 ms for 500,000 orders, a stall of the zone as long as
//! the encoding it was meant to take off it. Here it costs microseconds; while the
//! snapshot holds the chunks, the zone's next append copies the last (partial) chunk once,
//! and a cancel or shipment of an older order copies that order's chunk once.
//!
//! Items leave too: a chunk past the zone's retention window is made sparse
//! ([`Arena::sparsify`]), keeping only the items still wanted with their positions, and an
//! item of a sparse chunk can be taken out ([`Arena::remove`]); an empty chunk costs nothing
//! but its entry in the chunk list. Positions never move: an item keeps its index for life.

use crate::limits::ARENA_CHUNK_RECORDS;
use std::sync::Arc;

const CHUNK: usize = ARENA_CHUNK_RECORDS;

#[derive(Debug, Clone)]
enum Chunk<T> {
    /// Every position of the chunk, in order (the last chunk may be partly filled).
    Dense(Vec<T>),
    /// The items kept, by their offset in the chunk, ascending.
    Sparse(Vec<(u16, T)>),
}

#[derive(Debug)]
pub struct Arena<T> {
    chunks: Vec<Arc<Chunk<T>>>,
    /// Positions taken (the next push takes `len`).
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
    /// Appends `item`; its index.
    pub fn push(&mut self, item: T) -> usize {
        if self.len.is_multiple_of(CHUNK) {
            self.chunks
                .push(Arc::new(Chunk::Dense(Vec::with_capacity(CHUNK))));
        }
        let Chunk::Dense(items) = Arc::make_mut(self.chunks.last_mut().expect("ensured")) else {
            unreachable!("the chunk pushed to is dense: a sealed chunk is full")
        };
        items.push(item);
        self.len += 1;
        self.len - 1
    }

    /// The item at `index`, to change; copies its chunk first if a clone shares it.
    pub fn get_mut(&mut self, index: usize) -> Option<&mut T> {
        let chunk = self.chunks.get_mut(index / CHUNK)?;
        let offset = index % CHUNK;
        match Arc::make_mut(chunk) {
            Chunk::Dense(items) => items.get_mut(offset),
            Chunk::Sparse(items) => {
                let at = items
                    .binary_search_by_key(&(offset as u16), |(at, _)| *at)
                    .ok()?;
                Some(&mut items[at].1)
            }
        }
    }

    /// Ends the last chunk here: the next push starts a chunk of its own (the positions
    /// left in this one are never taken), so that this one can be made sparse.
    pub fn seal(&mut self) {
        self.len = self.len.next_multiple_of(CHUNK);
    }

    /// Keeps, of chunk `chunk`, only the items `keep` chooses (each with its index), and
    /// from now on only them: the chunk must be full or sealed.
    pub fn sparsify(&mut self, chunk: usize, mut keep: impl FnMut(usize, &T) -> bool) {
        assert!(
            (chunk + 1) * CHUNK <= self.len,
            "only a full chunk is made sparse"
        );
        let first = chunk * CHUNK;
        let kept: Vec<(u16, T)> = match &*self.chunks[chunk] {
            Chunk::Dense(items) => items
                .iter()
                .enumerate()
                .filter(|(offset, item)| keep(first + offset, item))
                .map(|(offset, item)| (offset as u16, item.clone()))
                .collect(),
            Chunk::Sparse(items) => items
                .iter()
                .filter(|(offset, item)| keep(first + usize::from(*offset), item))
                .cloned()
                .collect(),
        };
        self.chunks[chunk] = Arc::new(Chunk::Sparse(kept));
    }

    /// Takes the item at `index` out of its sparse chunk (a dense chunk keeps every
    /// position: `false`).
    pub fn remove(&mut self, index: usize) -> bool {
        let Some(chunk) = self.chunks.get_mut(index / CHUNK) else {
            return false;
        };
        if let Chunk::Dense(_) = **chunk {
            return false;
        }
        let Chunk::Sparse(items) = Arc::make_mut(chunk) else {
            unreachable!("checked")
        };
        let offset = (index % CHUNK) as u16;
        match items.binary_search_by_key(&offset, |(at, _)| *at) {
            Ok(at) => {
                items.remove(at);
                if items.is_empty() {
                    *items = Vec::new();
                }
                true
            }
            Err(_) => false,
        }
    }
}

impl<T> Arena<T> {
    /// Positions taken so far (items kept, gaps and removed ones alike).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Chunks so far (`len` over the chunk size, rounded up).
    pub fn chunks(&self) -> usize {
        self.chunks.len()
    }

    /// Whether chunk `chunk` was made sparse.
    pub fn is_sparse(&self, chunk: usize) -> bool {
        matches!(*self.chunks[chunk], Chunk::Sparse(_))
    }

    /// The item at `index`, if it is kept.
    #[inline]
    pub fn get(&self, index: usize) -> Option<&T> {
        match &**self.chunks.get(index / CHUNK)? {
            Chunk::Dense(items) => items.get(index % CHUNK),
            Chunk::Sparse(items) => {
                let offset = (index % CHUNK) as u16;
                let at = items.binary_search_by_key(&offset, |(at, _)| *at).ok()?;
                Some(&items[at].1)
            }
        }
    }

    /// Every item kept, with its index, in index order.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &T)> {
        self.chunks.iter().enumerate().flat_map(
            |(chunk, items)| -> Box<dyn Iterator<Item = (usize, &T)>> {
                let first = chunk * CHUNK;
                match &**items {
                    Chunk::Dense(items) => Box::new(
                        items
                            .iter()
                            .enumerate()
                            .map(move |(offset, item)| (first + offset, item)),
                    ),
                    Chunk::Sparse(items) => Box::new(
                        items
                            .iter()
                            .map(move |(offset, item)| (first + usize::from(*offset), item)),
                    ),
                }
            },
        )
    }

    /// Visits every item with its index, in index order (as [`Arena::iter`]), letting go of
    /// each chunk as soon as its items are visited; stops at the first error. A clone walked
    /// this way (a snapshot's, which takes seconds to write) stops sharing each chunk once
    /// past it, so the owner's next write into that chunk copies nothing.
    pub fn visit_releasing<E>(
        self,
        mut visit: impl FnMut(usize, &T) -> Result<(), E>,
    ) -> Result<(), E> {
        for (chunk, items) in self.chunks.into_iter().enumerate() {
            let first = chunk * CHUNK;
            match &*items {
                Chunk::Dense(items) => {
                    for (offset, item) in items.iter().enumerate() {
                        visit(first + offset, item)?;
                    }
                }
                Chunk::Sparse(items) => {
                    for (offset, item) in items {
                        visit(first + usize::from(*offset), item)?;
                    }
                }
            }
            // `items`, this chunk's reference, goes here.
        }
        Ok(())
    }

    /// The items of chunk `chunk`, with their indexes.
    pub fn chunk_items(&self, chunk: usize) -> impl Iterator<Item = (usize, &T)> {
        let first = chunk * CHUNK;
        let (dense, sparse): (&[T], &[(u16, T)]) = match &*self.chunks[chunk] {
            Chunk::Dense(items) => (items, &[]),
            Chunk::Sparse(items) => (&[], items),
        };
        dense
            .iter()
            .enumerate()
            .map(move |(offset, item)| (first + offset, item))
            .chain(
                sparse
                    .iter()
                    .map(move |(offset, item)| (first + usize::from(*offset), item)),
            )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clone_keeps_what_it_saw_while_the_original_goes_on() {
        let mut arena = Arena::default();
        for item in 0..(CHUNK * 2 + 10) {
            arena.push(item);
        }
        let snapshot = arena.clone();
        // Shared, not copied.
        assert!(Arc::ptr_eq(&arena.chunks[0], &snapshot.chunks[0]));
        *arena.get_mut(5).unwrap() = 1_000_000;
        arena.push(7);
        // The write copied the first chunk only; the clone still sees the old values.
        assert!(!Arc::ptr_eq(&arena.chunks[0], &snapshot.chunks[0]));
        assert!(Arc::ptr_eq(&arena.chunks[1], &snapshot.chunks[1]));
        assert_eq!(snapshot.get(5), Some(&5));
        assert_eq!(arena.get(5), Some(&1_000_000));
        assert_eq!(snapshot.len(), CHUNK * 2 + 10);
        assert_eq!(arena.len(), CHUNK * 2 + 11);
        assert_eq!(arena.get(CHUNK * 2 + 10), Some(&7));
        let items: Vec<usize> = snapshot.iter().map(|(_, item)| *item).collect();
        assert_eq!(items, (0..CHUNK * 2 + 10).collect::<Vec<_>>());
        assert_eq!(arena.iter().count(), arena.len());
    }

    #[test]
    fn a_clone_visited_releasing_lets_go_of_each_chunk_once_past_it() {
        let mut arena = Arena::default();
        for item in 0..(CHUNK * 3) {
            arena.push(item);
        }
        arena.sparsify(1, |index, _| index % 2 == 0);
        let snapshot = arena.clone();
        let shared = |arena: &Arena<usize>| -> Vec<bool> {
            (0..3)
                .map(|chunk| Arc::strong_count(&arena.chunks[chunk]) > 1)
                .collect()
        };
        assert_eq!(shared(&arena), [true, true, true]);
        let mut seen = Vec::new();
        snapshot
            .visit_releasing(|index, item| {
                if index == CHUNK {
                    // In the second chunk: the first is the original's alone.
                    assert_eq!(shared(&arena), [false, true, true]);
                }
                seen.push((index, *item));
                Ok::<(), ()>(())
            })
            .unwrap();
        assert_eq!(shared(&arena), [false, false, false]);
        let expected: Vec<(usize, usize)> = arena.iter().map(|(i, item)| (i, *item)).collect();
        assert_eq!(seen, expected);
        assert_eq!(seen.len(), CHUNK * 2 + CHUNK / 2);
        // Stops at the first error.
        let mut visited = 0;
        let stopped = arena.clone().visit_releasing(|index, _| {
            visited += 1;
            if index == 10 { Err(index) } else { Ok(()) }
        });
        assert_eq!((stopped, visited), (Err(10), 11));
    }

    #[test]
    fn a_sparse_chunk_keeps_its_items_at_their_indexes_until_they_are_removed() {
        let mut arena = Arena::default();
        for item in 0..(CHUNK + 3) {
            arena.push(item);
        }
        arena.sparsify(0, |index, _| index % 1000 == 7);
        assert!(arena.is_sparse(0));
        assert_eq!(arena.get(7), Some(&7));
        assert_eq!(arena.get(8), None);
        assert_eq!(arena.get(1007), Some(&1007));
        assert_eq!(arena.get(CHUNK + 2), Some(&(CHUNK + 2)));
        *arena.get_mut(1007).unwrap() = 5;
        assert_eq!(arena.get(1007), Some(&5));
        assert!(arena.remove(7));
        assert!(!arena.remove(7), "gone already");
        assert!(!arena.remove(CHUNK), "a dense chunk keeps its positions");
        let kept: Vec<usize> = arena.chunk_items(0).map(|(index, _)| index).collect();
        assert_eq!(kept, [1007, 2007, 3007, 4007]);
        // A partly filled chunk is sealed before it is made sparse; pushes go on after it.
        arena.seal();
        assert_eq!(arena.len(), 2 * CHUNK);
        arena.sparsify(1, |_, _| false);
        assert_eq!(arena.push(9), 2 * CHUNK);
        assert_eq!(arena.get(2 * CHUNK), Some(&9));
        assert_eq!(arena.get(CHUNK), None);
        let all: Vec<usize> = arena.iter().map(|(index, _)| index).collect();
        assert_eq!(all, [1007, 2007, 3007, 4007, 2 * CHUNK]);
    }
}
