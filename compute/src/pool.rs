//! One pool of fixed-size pages for everything the device holds per request or per adapter:
//! KV-cache blocks and adapter weights draw from the same free list (S-LoRA's unified paging),
//! so a node with many adapters and short contexts, or few adapters and long ones, uses the
//! same memory either way instead of failing on a fixed split.
//!
//! The pool only does the accounting (page numbers); the GPU backend maps page `p` to
//! `arena + p × page_bytes` of one device allocation. An adapter's matrices are packed into
//! its pages with [`pack`] so that no matrix straddles two pages (the kernels take one pointer
//! per matrix, and an adapter's pages need not be contiguous).

/// Who holds a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// A KV-cache block.
    Kv,
    /// Adapter weights.
    Adapter,
}

/// A free list of equal pages, with the count held by each kind of owner.
#[derive(Debug)]
pub struct PagePool {
    page_bytes: usize,
    total: usize,
    free: Vec<u32>,
    held_kv: usize,
    held_adapters: usize,
}

impl PagePool {
    /// `budget_bytes / page_bytes` pages.
    pub fn new(budget_bytes: usize, page_bytes: usize) -> PagePool {
        let page_bytes = page_bytes.max(1);
        let total = budget_bytes / page_bytes;
        PagePool {
            page_bytes,
            total,
            free: (0..total as u32).rev().collect(),
            held_kv: 0,
            held_adapters: 0,
        }
    }

    /// Bytes per page.
    pub fn page_bytes(&self) -> usize {
        self.page_bytes
    }

    /// Pages in the pool.
    pub fn total_pages(&self) -> usize {
        self.total
    }

    /// Pages nobody holds.
    pub fn free_pages(&self) -> usize {
        self.free.len()
    }

    /// Pages held by `owner`.
    pub fn held(&self, owner: Owner) -> usize {
        match owner {
            Owner::Kv => self.held_kv,
            Owner::Adapter => self.held_adapters,
        }
    }

    /// `n` pages for `owner`, or None (and nothing taken) when fewer are free: the caller
    /// then evicts an adapter or preempts a request and asks again.
    pub fn alloc(&mut self, n: usize, owner: Owner) -> Option<Vec<u32>> {
        if n > self.free.len() {
            return None;
        }
        let pages = self.free.split_off(self.free.len() - n);
        *self.count(owner) += n;
        Some(pages)
    }

    /// Give pages back.
    pub fn release(&mut self, pages: &mut Vec<u32>, owner: Owner) {
        let c = self.count(owner);
        *c = c.saturating_sub(pages.len());
        self.free.append(pages);
    }

    fn count(&mut self, owner: Owner) -> &mut usize {
        match owner {
            Owner::Kv => &mut self.held_kv,
            Owner::Adapter => &mut self.held_adapters,
        }
    }
}

/// Place items of `sizes` bytes into pages of `page_bytes`, each item starting at a multiple
/// of `align` and none straddling a page (first fit, in order). Returns each item's (page
/// number within the allocation, byte offset) and the pages used, or None when an item is
/// larger than a page.
pub fn pack(
    sizes: &[usize],
    page_bytes: usize,
    align: usize,
) -> Option<(Vec<(usize, usize)>, usize)> {
    let align = align.max(1);
    let mut out = Vec::with_capacity(sizes.len());
    let mut used: Vec<usize> = Vec::new();
    for &s in sizes {
        if s > page_bytes {
            return None;
        }
        let fit = used
            .iter()
            .position(|&u| u.next_multiple_of(align) + s <= page_bytes);
        let page = match fit {
            Some(p) => p,
            None => {
                used.push(0);
                used.len() - 1
            }
        };
        let off = used[page].next_multiple_of(align);
        used[page] = off + s;
        out.push((page, off));
    }
    Some((out, used.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_and_adapters_share_pages() {
        let mut p = PagePool::new(10 * 4096 + 100, 4096);
        assert_eq!(p.total_pages(), 10);
        let mut kv = p.alloc(6, Owner::Kv).expect("6 free");
        let mut ad = p.alloc(4, Owner::Adapter).expect("4 free");
        assert!(p.alloc(1, Owner::Kv).is_none(), "the pool is full");
        assert_eq!((p.held(Owner::Kv), p.held(Owner::Adapter)), (6, 4));
        // Evicting the adapter makes room for the KV cache to grow.
        p.release(&mut ad, Owner::Adapter);
        let more = p.alloc(4, Owner::Kv).expect("freed by the adapter");
        assert_eq!(p.held(Owner::Kv), 10);
        let mut all: Vec<u32> = kv.iter().chain(&more).copied().collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 10, "no page handed out twice");
        p.release(&mut kv, Owner::Kv);
        assert_eq!(p.free_pages(), 6);
    }

    #[test]
    fn pack_never_straddles() {
        let sizes = [3000, 2000, 1000, 4096, 100, 96];
        let (place, pages) = pack(&sizes, 4096, 256).expect("fits");
        let mut spans: Vec<(usize, usize, usize)> = Vec::new();
        for (&(page, off), &s) in place.iter().zip(&sizes) {
            assert_eq!(off % 256, 0);
            assert!(off + s <= 4096, "item of {s} at {off} straddles");
            for &(p2, o2, s2) in &spans {
                assert!(p2 != page || off >= o2 + s2 || o2 >= off + s, "overlap");
            }
            spans.push((page, off, s));
        }
        assert_eq!(pages, 3);
        assert!(pack(&[4097], 4096, 1).is_none());
    }
}
