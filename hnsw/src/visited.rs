//! Which nodes one search has already scored: an array of generation tags, so starting a new
//! search is one increment instead of clearing a set (a full clear only every 65,535 searches).

use parking_lot::Mutex;

pub(crate) struct Visited {
    tags: Vec<u16>,
    current: u16,
}

impl Visited {
    fn new(capacity: usize) -> Self {
        Visited {
            tags: vec![0; capacity],
            current: 0,
        }
    }

    /// Forgets every mark and makes room for ids below `capacity`.
    fn reset(&mut self, capacity: usize) {
        if self.tags.len() < capacity {
            self.tags.resize(capacity, 0);
        }
        self.current = self.current.wrapping_add(1);
        if self.current == 0 {
            self.tags.fill(0);
            self.current = 1;
        }
    }

    /// Marks `id`; true if it was not marked yet in this search.
    #[inline(always)]
    pub(crate) fn insert(&mut self, id: u32) -> bool {
        let tag = &mut self.tags[id as usize];
        let fresh = *tag != self.current;
        *tag = self.current;
        fresh
    }

    #[inline(always)]
    pub(crate) fn tag_ptr(&self, id: u32) -> *const u16 {
        self.tags.as_ptr().wrapping_add(id as usize)
    }
}

/// Reusable tag arrays, one per concurrent search.
#[derive(Default)]
pub(crate) struct VisitedPool {
    free: Mutex<Vec<Visited>>,
}

impl VisitedPool {
    /// A cleared tag array for ids below `capacity`, returned to the pool when dropped.
    pub(crate) fn take(&self, capacity: usize) -> VisitedGuard<'_> {
        let mut v = self.free.lock().pop().unwrap_or_else(|| Visited::new(capacity));
        v.reset(capacity);
        VisitedGuard {
            pool: self,
            visited: Some(v),
        }
    }
}

pub(crate) struct VisitedGuard<'a> {
    pool: &'a VisitedPool,
    visited: Option<Visited>,
}

impl std::ops::Deref for VisitedGuard<'_> {
    type Target = Visited;
    fn deref(&self) -> &Visited {
        self.visited.as_ref().expect("present until drop")
    }
}

impl std::ops::DerefMut for VisitedGuard<'_> {
    fn deref_mut(&mut self) -> &mut Visited {
        self.visited.as_mut().expect("present until drop")
    }
}

impl Drop for VisitedGuard<'_> {
    fn drop(&mut self) {
        if let Some(v) = self.visited.take() {
            self.pool.free.lock().push(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_are_forgotten_between_searches_even_across_wraparound() {
        let pool = VisitedPool::default();
        for round in 0..70_000u32 {
            let mut v = pool.take(8);
            assert!(v.insert(round % 8), "round {round}");
            assert!(!v.insert(round % 8));
        }
        let mut v = pool.take(16);
        assert!(v.insert(15));
    }
}
