//! The Merkle root that commits to a datanet version: a binary blake3 tree over the version's
//! row hashes in row-id order.
//!
//! Leaves are the row hashes themselves. An inner node is `blake3(0x01 ‖ left ‖ right)`; a
//! node without a sibling moves up unchanged. The root of no rows is 32 zero bytes. The
//! domain byte keeps an inner node from ever being read as a row hash.

use crate::model::Hash;

/// Root of the tree over `leaves`, in order.
pub fn root(mut level: Vec<Hash>) -> Hash {
    if level.is_empty() {
        return [0; 32];
    }
    while level.len() > 1 {
        let mut next = Vec::with_capacity(level.len().div_ceil(2));
        for pair in level.chunks(2) {
            match pair {
                [l, r] => next.push(node(l, r)),
                [single] => next.push(*single),
                _ => unreachable!("chunks(2) yields one or two items"),
            }
        }
        level = next;
    }
    level[0]
}

fn node(l: &Hash, r: &Hash) -> Hash {
    let mut h = blake3::Hasher::new();
    h.update(&[1]);
    h.update(l);
    h.update(r);
    *h.finalize().as_bytes()
}

/// The sibling path proving `leaves[index]` is under [`root`]: `(sibling, sibling_is_left)`
/// pairs from the leaf up. `None` when the index is out of range.
pub fn proof(leaves: &[Hash], index: usize) -> Option<Vec<(Hash, bool)>> {
    if index >= leaves.len() {
        return None;
    }
    let mut path = Vec::new();
    let mut level = leaves.to_vec();
    let mut i = index;
    while level.len() > 1 {
        let sibling = i ^ 1;
        if sibling < level.len() {
            path.push((level[sibling], sibling < i));
        }
        let mut next = Vec::with_capacity(level.len().div_ceil(2));
        for pair in level.chunks(2) {
            match pair {
                [l, r] => next.push(node(l, r)),
                [single] => next.push(*single),
                _ => unreachable!("chunks(2) yields one or two items"),
            }
        }
        level = next;
        i /= 2;
    }
    Some(path)
}

/// Check a [`proof`] of `leaf` against `root`.
pub fn verify(root: &Hash, leaf: &Hash, path: &[(Hash, bool)]) -> bool {
    let mut acc = *leaf;
    for (sibling, left) in path {
        acc = if *left {
            node(sibling, &acc)
        } else {
            node(&acc, sibling)
        };
    }
    &acc == root
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n as u64)
            .map(|i| *blake3::hash(&i.to_le_bytes()).as_bytes())
            .collect()
    }

    #[test]
    fn empty_and_single() {
        assert_eq!(root(vec![]), [0; 32]);
        let l = leaves(1);
        assert_eq!(root(l.clone()), l[0]);
    }

    #[test]
    fn every_leaf_proves_for_many_sizes() {
        for n in 1..40 {
            let l = leaves(n);
            let r = root(l.clone());
            for i in 0..n {
                let p = proof(&l, i).expect("in range");
                assert!(verify(&r, &l[i], &p), "n={n} i={i}");
                assert!(!verify(&r, &l[(i + 1) % n], &p) || n == 1, "n={n} i={i}");
            }
        }
    }

    #[test]
    fn order_matters() {
        let mut l = leaves(5);
        let a = root(l.clone());
        l.swap(1, 2);
        assert_ne!(a, root(l));
    }
}
