//! The paged KV cache: keys and values live in fixed-size blocks drawn from one pool, so a
//! request holds exactly the blocks its context needs, admission is a question of free blocks,
//! and a finished (or abandoned) request gives its blocks back at once.

/// Keys and values of every layer, in blocks of `block_size` token positions.
#[derive(Debug)]
pub struct KvCache {
    block_size: usize,
    num_blocks: usize,
    kv_width: usize,
    keys: Vec<Vec<f32>>,
    values: Vec<Vec<f32>>,
    free: Vec<u32>,
}

impl KvCache {
    /// A pool of `num_blocks` blocks for `layers` layers of `kv_width` (= kv heads × head dim)
    /// floats per position. The memory is zero-filled lazily by the OS.
    pub fn new(layers: usize, kv_width: usize, block_size: usize, num_blocks: usize) -> KvCache {
        let per_layer = num_blocks * block_size * kv_width;
        KvCache {
            block_size,
            num_blocks,
            kv_width,
            keys: (0..layers).map(|_| vec![0f32; per_layer]).collect(),
            values: (0..layers).map(|_| vec![0f32; per_layer]).collect(),
            // Pop from the end: low block numbers are handed out first.
            free: (0..num_blocks as u32).rev().collect(),
        }
    }

    /// How many blocks `budget_bytes` buys for this shape (at least one).
    pub fn blocks_for_budget(
        layers: usize,
        kv_width: usize,
        block_size: usize,
        budget_bytes: usize,
    ) -> usize {
        let per_block = 2 * layers * kv_width * block_size * std::mem::size_of::<f32>();
        (budget_bytes / per_block.max(1)).max(1)
    }

    /// Positions per block.
    pub fn block_size(&self) -> usize {
        self.block_size
    }

    /// Blocks in the pool.
    pub fn num_blocks(&self) -> usize {
        self.num_blocks
    }

    /// Blocks not held by any request.
    pub fn free_blocks(&self) -> usize {
        self.free.len()
    }

    /// Blocks needed to hold `tokens` positions.
    pub fn blocks_needed(&self, tokens: usize) -> usize {
        tokens.div_ceil(self.block_size)
    }

    /// Grow `table` so it covers `tokens` positions; false (and nothing taken) when the pool
    /// cannot cover it.
    pub fn reserve(&mut self, table: &mut Vec<u32>, tokens: usize) -> bool {
        let need = self.blocks_needed(tokens).saturating_sub(table.len());
        if need > self.free.len() {
            return false;
        }
        for _ in 0..need {
            if let Some(b) = self.free.pop() {
                table.push(b);
            }
        }
        true
    }

    /// Give a request's blocks back.
    pub fn release(&mut self, table: &mut Vec<u32>) {
        self.free.append(table);
    }

    fn slot(&self, table: &[u32], pos: usize) -> usize {
        let b = table[pos / self.block_size] as usize;
        (b * self.block_size + pos % self.block_size) * self.kv_width
    }

    /// Store the key and value rows of position `pos`.
    pub fn write(&mut self, layer: usize, table: &[u32], pos: usize, k: &[f32], v: &[f32]) {
        let s = self.slot(table, pos);
        let w = self.kv_width;
        self.keys[layer][s..s + w].copy_from_slice(k);
        self.values[layer][s..s + w].copy_from_slice(v);
    }

    /// The key row of position `pos`.
    pub fn key(&self, layer: usize, table: &[u32], pos: usize) -> &[f32] {
        let s = self.slot(table, pos);
        &self.keys[layer][s..s + self.kv_width]
    }

    /// The value row of position `pos`.
    pub fn value(&self, layer: usize, table: &[u32], pos: usize) -> &[f32] {
        let s = self.slot(table, pos);
        &self.values[layer][s..s + self.kv_width]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_release_accounting() {
        let mut kv = KvCache::new(1, 2, 4, 3);
        let mut a = Vec::new();
        assert!(kv.reserve(&mut a, 5));
        assert_eq!(a.len(), 2);
        assert_eq!(kv.free_blocks(), 1);
        let mut b = Vec::new();
        assert!(!kv.reserve(&mut b, 8), "two blocks are not free");
        assert!(b.is_empty() && kv.free_blocks() == 1);
        kv.write(0, &a, 5, &[1.0, 2.0], &[3.0, 4.0]);
        assert_eq!(kv.key(0, &a, 5), &[1.0, 2.0]);
        assert_eq!(kv.value(0, &a, 5), &[3.0, 4.0]);
        kv.release(&mut a);
        assert!(a.is_empty());
        assert_eq!(kv.free_blocks(), 3);
        assert!(kv.reserve(&mut b, 12));
    }
}
