//! String interning: every service, operation, route and attribute value is stored once.
//!
//! One contiguous byte arena holds the strings; a hash table of indices finds them. Memory is
//! accounted from real capacities so the window's `max_memory` bound covers it.
//! Symbol 0 is the empty string and means "absent".

use std::hash::BuildHasher;

use hashbrown::DefaultHashBuilder;
use hashbrown::HashTable;

/// An interned string. `Symbol::NONE` (0) is the empty string.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, PartialOrd, Ord)]
pub struct Symbol(pub u32);

impl Symbol {
    pub const NONE: Symbol = Symbol(0);

    pub fn is_none(self) -> bool {
        self.0 == 0
    }

    pub fn is_some(self) -> bool {
        self.0 != 0
    }
}

#[derive(Clone)]
pub struct Interner {
    arena: String,
    /// `(start, len)` of each symbol's bytes in `arena`.
    spans: Vec<(u32, u32)>,
    table: HashTable<u32>,
    hasher: DefaultHashBuilder,
}

impl std::fmt::Debug for Interner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interner").field("symbols", &self.spans.len()).field("bytes", &self.arena.len()).finish()
    }
}

impl Default for Interner {
    fn default() -> Self {
        let mut interner = Interner {
            arena: String::new(),
            spans: Vec::new(),
            table: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
        };
        let empty = interner.intern("");
        debug_assert_eq!(empty, Symbol::NONE);
        interner
    }
}

impl Interner {
    pub fn intern(&mut self, text: &str) -> Symbol {
        let hash = self.hash_str(text);
        let Interner { arena, spans, table, hasher } = self;
        if let Some(index) = table.find(hash, |&index| {
            let (start, len) = spans[index as usize];
            &arena[start as usize..(start + len) as usize] == text
        }) {
            return Symbol(*index);
        }
        let index = spans.len() as u32;
        let start = arena.len() as u32;
        arena.push_str(text);
        spans.push((start, text.len() as u32));
        table.insert_unique(hash, index, |&existing| {
            let (start, len) = spans[existing as usize];
            hasher.hash_one(&arena[start as usize..(start + len) as usize])
        });
        Symbol(index)
    }

    /// Looks a string up without adding it.
    pub fn get(&self, text: &str) -> Option<Symbol> {
        let hash = self.hash_str(text);
        self.table.find(hash, |&index| self.resolve(Symbol(index)) == text).map(|index| Symbol(*index))
    }

    pub fn resolve(&self, symbol: Symbol) -> &str {
        match self.spans.get(symbol.0 as usize) {
            Some(&(start, len)) => &self.arena[start as usize..(start + len) as usize],
            None => "",
        }
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.len() <= 1
    }

    /// Bytes allocated (capacities, not lengths).
    pub fn heap_bytes(&self) -> usize {
        self.arena.capacity() + self.spans.capacity() * std::mem::size_of::<(u32, u32)>() + self.table.allocation_size()
    }

    fn hash_str(&self, text: &str) -> u64 {
        self.hasher.hash_one(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_is_idempotent_and_resolvable() {
        let mut interner = Interner::default();
        let a = interner.intern("checkout");
        let b = interner.intern("payments");
        assert_eq!(interner.intern("checkout"), a);
        assert_ne!(a, b);
        assert_eq!(interner.resolve(a), "checkout");
        assert_eq!(interner.resolve(b), "payments");
        assert_eq!(interner.intern(""), Symbol::NONE);
        assert_eq!(interner.get("payments"), Some(b));
        assert_eq!(interner.get("nope"), None);
    }

    #[test]
    fn many_strings_survive_table_growth() {
        let mut interner = Interner::default();
        let symbols: Vec<_> = (0..10_000).map(|i| interner.intern(&format!("service-{i}"))).collect();
        for (i, symbol) in symbols.iter().enumerate() {
            assert_eq!(interner.resolve(*symbol), format!("service-{i}"));
            assert_eq!(interner.get(&format!("service-{i}")), Some(*symbol));
        }
        assert!(interner.heap_bytes() > 10_000 * 8);
    }
}
