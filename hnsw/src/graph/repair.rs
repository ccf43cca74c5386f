//! Linking back the nodes searches cannot find (see `Hnsw::repair`).

use std::sync::atomic::Ordering;

use super::{Accept, Hnsw};
use crate::codec::{with_code, Code};

/// In-links an unreachable node gets from its nearest reachable nodes.
const RELINKS: usize = 4;

impl Hnsw {
    /// Live nodes that no level-0 walk from the entry point reaches (a search's last level).
    pub(crate) fn unreachable(&self) -> Vec<u32> {
        let Some((entry, _)) = self.entry_point() else {
            return Vec::new();
        };
        let allocated = self.allocated();
        let mut seen = vec![false; allocated];
        let mut stack = vec![entry];
        seen[entry as usize] = true;
        while let Some(id) = stack.pop() {
            for l in self.links(self.link_list(id, 0)) {
                let next = l.load(Ordering::Acquire) as usize;
                if next < allocated && !std::mem::replace(&mut seen[next], true) {
                    stack.push(next as u32);
                }
            }
        }
        (0..allocated as u32)
            .filter(|&id| !seen[id as usize] && !self.is_deleted(id))
            .collect()
    }

    /// Live nodes on level 0 that none of their own neighbours links back to: a search that
    /// comes near them walks their neighbours and may never step in.
    pub(crate) fn one_way(&self) -> Vec<u32> {
        (0..self.allocated() as u32)
            .filter(|&id| !self.is_deleted(id))
            .filter(|&id| {
                let out = self.links(self.link_list(id, 0));
                !out.is_empty()
                    && !out.iter().any(|n| {
                        let back = self.link_list(n.load(Ordering::Acquire), 0);
                        self.links(back).iter().any(|b| b.load(Ordering::Acquire) == id)
                    })
            })
            .collect()
    }

    /// Links back the live nodes searches cannot find. Concurrent inserts can prune every link
    /// into a node (each neighbour's heuristic drops it in favour of a node inserted at the same
    /// time), or every link from its own neighbourhood; such a node is then never, or rarely,
    /// returned. Each one gets links from a few of the nearest nodes a walk from the entry
    /// reaches, displacing their farthest link when a list is full; a node a displaced link
    /// leaves stranded is caught by the next round. Returns how many nodes were relinked.
    /// Callers keep inserts out meanwhile (searches may go on).
    pub fn repair(&self) -> usize {
        let mut relinked = 0;
        for _round in 0..4 {
            let mut orphans = self.unreachable();
            orphans.extend(self.one_way());
            if orphans.is_empty() {
                break;
            }
            relinked += orphans.len();
            with_code!(&self.code, c => orphans.iter().for_each(|&id| self.relink(c, id)));
        }
        relinked
    }

    fn relink<C: Code>(&self, code: &C, id: u32) {
        let Some((entry, top)) = self.entry_point() else {
            return;
        };
        let words = self.code_words(id);
        // Its nearest own neighbour links back to it (no longer one-way)...
        let nearest_out = self
            .links(self.link_list(id, 0))
            .iter()
            .map(|l| l.load(Ordering::Acquire))
            .min_by(|a, b| {
                let (da, db) = (
                    code.distance_codes(words, self.code_words(*a)),
                    code.distance_codes(words, self.code_words(*b)),
                );
                da.total_cmp(&db)
            });
        if let Some(n) = nearest_out {
            self.force_link(code, n, id);
        }
        // ...and so do a few of the nodes a search for its vector ends at (by the query-side
        // distance, which differs from the building one for asymmetric codes): a search must
        // be able to come at it from the side it searches from.
        let q = code.prepare(&code.decode(words));
        let dist = |w: &[u32]| code.distance(&q, w);
        let start = self.greedy(&dist, entry, top, 0);
        let found = {
            let mut visited = self.visited.take(self.capacity);
            self.search_layer(&dist, start, self.params.ef_construct, 0, &mut visited, &Accept::All)
        };
        for near in found.into_sorted_vec().into_iter().filter(|s| s.id != id).take(RELINKS) {
            self.force_link(code, near.id, id);
        }
    }

    /// Adds a level-0 link from `node` to `to`, displacing `node`'s farthest link if need be.
    fn force_link<C: Code>(&self, code: &C, node: u32, to: u32) {
        let _lock = self.locks[node as usize].lock();
        let Some(slots) = Self::append_link(self.link_list(node, 0), to) else {
            return;
        };
        let base = self.code_words(node);
        let farthest = slots
            .iter()
            .enumerate()
            .map(|(i, s)| (code.distance_codes(base, self.code_words(s.load(Ordering::Relaxed))), i))
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map_or(0, |(_, i)| i);
        slots[farthest].store(to, Ordering::Release);
    }
}
