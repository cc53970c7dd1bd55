//! Dense integer identifiers for everything the config, catalogue and stock name.
//!
//! Strings are interned once, when the network and catalogue load; the hot path then works
//! on `u32`/`u16` indexes into flat vectors, so routing an order never hashes or compares a
//! warehouse or carrier name. Warehouses and carriers are interned in the lexicographic
//! order of their ids, so comparing two indexes is the same as comparing the two ids: the
//! contract's tie-breaks ("then warehouse id, then carrier id") cost one integer compare.

use compact_str::CompactString;
use rustc_hash::FxHashMap;

macro_rules! dense_id {
    ($(#[$doc:meta])* $name:ident, $int:ty) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub $int);

        impl $name {
            /// The index into the vectors that hold this kind of thing.
            #[inline]
            pub fn index(self) -> usize {
                self.0 as usize
            }
        }
    };
}

dense_id!(
    /// A SKU of the catalogue.
    SkuId,
    u32
);
dense_id!(
    /// A warehouse of the network (sorted by id).
    WarehouseId,
    u16
);
dense_id!(
    /// A carrier of the network (sorted by id).
    CarrierId,
    u16
);
dense_id!(
    /// A destination region of the network.
    RegionId,
    u16
);
dense_id!(
    /// A zone of the network: the routing partition, the unit of ownership (one writer each).
    ZoneId,
    u16
);
dense_id!(
    /// A customer tier.
    TierId,
    u16
);

/// A two-way map between names and dense indexes `0..len`.
///
/// Owned by whatever loaded the names (the network or the catalogue); read-only afterwards.
#[derive(Debug, Default, Clone)]
pub struct Interner {
    /// The name of every index, in index order.
    names: Vec<CompactString>,
    /// Name to index. Fx hashing: keys come from our own config files and catalogues, and
    /// lookups on the hot path (one per order line) must be cheap.
    indexes: FxHashMap<CompactString, u32>,
    /// Whether some name needs escaping in a JSON string (a quote, a backslash, a control
    /// character): when none does, output copies names as they are.
    needs_escaping: bool,
}

impl Interner {
    /// An interner sized for `capacity` names.
    pub fn with_capacity(capacity: usize) -> Self {
        Interner {
            names: Vec::with_capacity(capacity),
            indexes: FxHashMap::with_capacity_and_hasher(capacity, Default::default()),
            needs_escaping: false,
        }
    }

    /// Adds `name` and returns its index, or `Err(existing index)` when it is already there.
    pub fn insert(&mut self, name: &str) -> Result<u32, u32> {
        if let Some(&existing) = self.indexes.get(name) {
            return Err(existing);
        }
        let index = u32::try_from(self.names.len()).expect("fewer than 2^32 names");
        self.needs_escaping |= !is_json_plain(name);
        let name = CompactString::new(name);
        self.indexes.insert(name.clone(), index);
        self.names.push(name);
        Ok(index)
    }

    /// The index of `name`, if it was interned.
    #[inline]
    pub fn get(&self, name: &str) -> Option<u32> {
        self.indexes.get(name).copied()
    }

    /// The name of `index`. Panics on an index this interner never handed out: that is a
    /// programmer error, not an input error.
    #[inline]
    pub fn name(&self, index: u32) -> &str {
        &self.names[index as usize]
    }

    /// Starts loading the name of `index` (see [`crate::prefetch`]).
    #[inline]
    pub fn prefetch(&self, index: u32) {
        if let Some(name) = self.names.get(index as usize) {
            crate::prefetch::prefetch(name);
        }
    }

    /// Whether every name can be written into JSON without escaping.
    #[inline]
    pub fn all_json_plain(&self) -> bool {
        !self.needs_escaping
    }

    /// How many names there are.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// All names in index order.
    pub fn names(&self) -> impl ExactSizeIterator<Item = &str> {
        self.names.iter().map(CompactString::as_str)
    }
}

/// Whether `text` can stand inside a JSON string as it is.
pub fn is_json_plain(text: &str) -> bool {
    text.bytes()
        .all(|byte| byte >= 0x20 && byte != b'"' && byte != b'\\')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interns_densely_and_refuses_duplicates() {
        let mut interner = Interner::with_capacity(4);
        assert_eq!(interner.insert("b"), Ok(0));
        assert_eq!(interner.insert("a"), Ok(1));
        assert_eq!(interner.insert("b"), Err(0));
        assert_eq!(interner.get("a"), Some(1));
        assert_eq!(interner.get("c"), None);
        assert_eq!(interner.name(0), "b");
        assert_eq!(interner.names().collect::<Vec<_>>(), ["b", "a"]);
        assert!(interner.all_json_plain());
        interner.insert("say \"hi\"").unwrap();
        assert!(!interner.all_json_plain());
    }
}
