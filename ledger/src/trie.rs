//! The Merkle-Patricia tries of the state (accounts, and one per contract's storage), kept as
//! nodes in redb and updated in place from the changed keys only.
//!
//! Nodes are stored by **path**: the key is the trie's owner (see [`Owner`]) followed by the
//! nibbles from the root to the node, one byte per nibble. A node's position never depends
//! on its hash, so an update touches the nodes on the paths of the changed keys and nothing
//! else, and the cost of a block's state root grows with what the block changed, not with the
//! size of the state. Each branch and extension stores the references (RLP or hash) of its
//! children, so hashing visits only the nodes this update rewrote. The encoding of nodes and
//! references is alloy-trie's; tests check the roots against alloy-trie's `HashBuilder`.
//!
//! The account trie's leaves are not stored: a leaf holds what the `accounts` table already
//! holds under the same hashed address, and writing it again would cost one more random
//! B-tree insert per changed account. Where the account trie has no stored node at a path,
//! the leaf is read from `accounts` ([`NodeSource::account_leaf`]: the one account under
//! that nibble prefix). A rewritten leaf is written as a deletion of its path, which also
//! clears leaves stored by earlier versions. Storage tries keep their leaves: finding one
//! would take a lookup in `storage` by owner and prefix, and the blocks that write the most
//! are transfers, whose writes are accounts.
//!
//! Only the newest state is kept (a path holds one node). A proof at an older block is the
//! newest trie with that block's values put back in an update that is never written (see
//! `Ledger::proof`).

use alloy_primitives::{B256, keccak256};
use alloy_trie::nodes::{BranchNodeRef, ExtensionNodeRef, LeafNodeRef, RlpNode};
use alloy_trie::{EMPTY_ROOT_HASH, Nibbles, TrieMask};

use crate::error::{Error, Result};

/// Which trie a node belongs to: the account trie, or the storage trie of the account whose
/// hashed address is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// The world state trie.
    Accounts,
    /// The storage trie of one account (keccak of its address).
    Storage(B256),
}

impl Owner {
    /// Whether this trie stores its leaves: storage tries do; the account trie reads them
    /// from `accounts` (see the module doc).
    pub fn stores_leaves(&self) -> bool {
        matches!(self, Owner::Storage(_))
    }

    /// The key prefix of this trie's nodes in the node table.
    pub fn prefix(&self) -> Vec<u8> {
        match self {
            Owner::Accounts => vec![0],
            Owner::Storage(h) => {
                let mut v = Vec::with_capacity(33);
                v.push(1);
                v.extend_from_slice(h.as_slice());
                v
            }
        }
    }
}

/// Reads stored nodes (a redb table in a read or write transaction, or a map in tests).
pub trait NodeSource {
    /// The encoded node at `key` (owner prefix + path), if any.
    fn node(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// The account trie's leaves are not stored (see the module doc): the one account whose
    /// hashed address starts with the nibbles `path`, as (the rest of its key's nibbles, the
    /// leaf value), or `None` when no account does. Asked only where the trie has no stored
    /// node. A source that cannot see the accounts refuses.
    fn account_leaf(&self, path: &[u8]) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        let _ = path;
        Err(Error::Internal(
            "this node source cannot look up account leaves".into(),
        ))
    }
}

/// The account trie's stored nodes, held in memory for as long as the ledger is open, so
/// that a block's walk down the paths of its changed accounts reads no B-tree page.
///
/// At a million accounts the trie's branches are some 350k nodes, and the ~2,000 accounts
/// a full block changes touch nodes spread over all of them: read from redb, each cost a
/// B-tree descent through pages the CPU caches no longer hold, and those reads were most of
/// the state root's time (BENCHMARKS.md). The cache is **complete** for the paths it
/// covers — every stored node whose path is shorter than [`NodeCache::covers`] nibbles is
/// here — so a path it covers and does not hold has no stored node, and the walk goes
/// straight to the account's leaf without asking the table. Within its memory budget it
/// covers every depth; past it, the deepest levels are left to redb, a whole level at a
/// time, so that completeness holds for what it keeps.
///
/// It only follows the table: loaded from it at open, then given each committed block's
/// node writes (see `Ledger::commit_block`), never ahead of a commit.
#[derive(Debug, Default)]
pub struct NodeCache {
    covers: usize,
    budget: usize,
    bytes: usize,
    nodes: alloy_primitives::map::HashMap<Box<[u8]>, Box<[u8]>>,
}

/// Memory a cached node costs beyond its path and encoding: the map's slot and the two
/// allocations' headers, as counted against the budget.
const CACHE_ENTRY_OVERHEAD: usize = 64;

/// Paths are at most 64 nibbles, so a cache covering 65 lengths covers every path.
const ALL_DEPTHS: usize = 65;

impl NodeCache {
    /// What a node with a path of `path_len` nibbles and `encoded_len` bytes costs.
    pub fn cost(path_len: usize, encoded_len: usize) -> usize {
        path_len + encoded_len + CACHE_ENTRY_OVERHEAD
    }

    /// How many path lengths fit `budget`, given the cost of the stored nodes at each path
    /// length (`per_depth[d]`: the nodes whose path has `d` nibbles).
    pub fn depths_within(per_depth: &[usize], budget: usize) -> usize {
        let mut total = 0usize;
        for (d, cost) in per_depth.iter().enumerate().take(ALL_DEPTHS) {
            total = total.saturating_add(*cost);
            if total > budget {
                return d;
            }
        }
        ALL_DEPTHS
    }

    /// An empty cache for the paths shorter than `covers` nibbles (0: a cache that covers
    /// nothing, every read goes to the table), kept within `budget` bytes.
    pub fn new(covers: usize, budget: usize) -> Self {
        NodeCache {
            covers: covers.min(ALL_DEPTHS),
            budget,
            bytes: 0,
            nodes: Default::default(),
        }
    }

    /// The paths it covers are those shorter than this many nibbles.
    pub fn covers(&self) -> usize {
        self.covers
    }

    /// Nodes held.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether it holds no node.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Memory held, as counted against the budget.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The node stored under a full node key: `None` where the cache cannot say (another
    /// trie, or a path it does not cover), `Some(None)` where nothing is stored.
    pub fn get(&self, key: &[u8]) -> Option<Option<&[u8]>> {
        let path = account_path(key)?;
        if path.len() >= self.covers {
            return None;
        }
        Some(self.nodes.get(path).map(|v| &**v))
    }

    /// Add a node read from the table while loading (path without the owner prefix).
    pub fn insert_loaded(&mut self, path: &[u8], encoded: &[u8]) {
        if path.len() < self.covers {
            self.put(path, encoded);
        }
    }

    fn put(&mut self, path: &[u8], encoded: &[u8]) {
        self.bytes += Self::cost(path.len(), encoded.len());
        if let Some(old) = self.nodes.insert(path.into(), encoded.into()) {
            self.bytes -= Self::cost(path.len(), old.len());
        }
    }

    /// Follow a committed block's node writes (full keys; `None` removes). Past the budget,
    /// the deepest level it covers is given up, until it fits again.
    pub fn apply(&mut self, writes: &[(Vec<u8>, Option<Vec<u8>>)]) {
        for (k, v) in writes {
            let Some(path) = account_path(k) else {
                continue;
            };
            if path.len() >= self.covers {
                continue;
            }
            match v {
                Some(v) => self.put(path, v),
                None => {
                    if let Some(old) = self.nodes.remove(path) {
                        self.bytes -= Self::cost(path.len(), old.len());
                    }
                }
            }
        }
        while self.bytes > self.budget && self.covers > 0 {
            self.covers -= 1;
            let covers = self.covers;
            let mut freed = 0usize;
            self.nodes.retain(|p, v| {
                let keep = p.len() < covers;
                if !keep {
                    freed += Self::cost(p.len(), v.len());
                }
                keep
            });
            self.bytes -= freed;
        }
    }
}

/// The path of a node of the account trie, from its full key (`None`: another trie's).
fn account_path(key: &[u8]) -> Option<&[u8]> {
    match key.split_first() {
        Some((0, path)) => Some(path),
        _ => None,
    }
}

/// CPU time the calling thread has used: what trie work costs apart from waiting for a core
/// (on two cores the sequencer shares them with the RPC threads).
pub fn thread_cpu_time() -> std::time::Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    std::time::Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    )
}

/// The first and last 32-byte keys under a nibble prefix (at most 64 nibbles).
pub fn prefix_range(path: &[u8]) -> ([u8; 32], [u8; 32]) {
    let mut lo = [0u8; 32];
    let mut hi = [0xffu8; 32];
    for (i, &n) in path.iter().enumerate().take(64) {
        let (byte, shift) = (i / 2, if i % 2 == 0 { 4 } else { 0 });
        lo[byte] = (lo[byte] & !(0x0f << shift)) | (n << shift);
        hi[byte] = (hi[byte] & !(0x0f << shift)) | (n << shift);
    }
    (lo, hi)
}

/// A child reference (its RLP, or the RLP of its hash); empty means "rewritten in this
/// update, hash it again". Inline, so cloning a branch copies 16 of them without allocating.
type Ref = RlpNode;

/// One trie node as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Leaf { key: Vec<u8>, value: Vec<u8> },
    Ext { key: Vec<u8>, child: Ref },
    Branch { children: Box<[Option<Ref>; 16]> },
}

impl Node {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Node::Leaf { key, value } => {
                out.push(0);
                out.push(key.len() as u8);
                out.extend_from_slice(key);
                out.extend_from_slice(value);
            }
            Node::Ext { key, child } => {
                out.push(1);
                out.push(key.len() as u8);
                out.extend_from_slice(key);
                out.extend_from_slice(child.as_ref());
            }
            Node::Branch { children } => {
                out.push(2);
                let mut mask = 0u16;
                for (i, c) in children.iter().enumerate() {
                    if c.is_some() {
                        mask |= 1 << i;
                    }
                }
                out.extend_from_slice(&mask.to_be_bytes());
                for c in children.iter().flatten() {
                    out.push(c.len() as u8);
                    out.extend_from_slice(c.as_ref());
                }
            }
        }
        out
    }

    fn decode(b: &[u8]) -> Result<Node> {
        let bad = || Error::Corrupt("undecodable trie node".into());
        let (&tag, rest) = b.split_first().ok_or_else(bad)?;
        match tag {
            0 | 1 => {
                let (&len, rest) = rest.split_first().ok_or_else(bad)?;
                let len = usize::from(len);
                if rest.len() < len {
                    return Err(bad());
                }
                let (key, tail) = rest.split_at(len);
                Ok(if tag == 0 {
                    Node::Leaf {
                        key: key.to_vec(),
                        value: tail.to_vec(),
                    }
                } else {
                    Node::Ext {
                        key: key.to_vec(),
                        child: RlpNode::from_raw(tail).ok_or_else(bad)?,
                    }
                })
            }
            2 => {
                if rest.len() < 2 {
                    return Err(bad());
                }
                let mask = u16::from_be_bytes([rest[0], rest[1]]);
                let mut rest = &rest[2..];
                let mut children: Box<[Option<Ref>; 16]> = Box::default();
                for (i, c) in children.iter_mut().enumerate() {
                    if mask & (1 << i) == 0 {
                        continue;
                    }
                    let (&len, tail) = rest.split_first().ok_or_else(bad)?;
                    let len = usize::from(len);
                    if tail.len() < len {
                        return Err(bad());
                    }
                    *c = Some(RlpNode::from_raw(&tail[..len]).ok_or_else(bad)?);
                    rest = &tail[len..];
                }
                Ok(Node::Branch { children })
            }
            _ => Err(bad()),
        }
    }

    /// Encode the node's RLP into `buf` (cleared first) and return its reference: the RLP
    /// itself when shorter than a hash, else the RLP of its keccak. Every child reference
    /// must be filled in. alloy-trie hashes while encoding, so the caller must not hash
    /// `buf` again.
    fn rlp(&self, buf: &mut Vec<u8>) -> RlpNode {
        buf.clear();
        match self {
            Node::Leaf { key, value } => {
                let k = Nibbles::from_nibbles_unchecked(key);
                LeafNodeRef::new(&k, value).rlp(buf)
            }
            Node::Ext { key, child } => {
                let k = Nibbles::from_nibbles_unchecked(key);
                ExtensionNodeRef::new(&k, child.as_ref()).rlp(buf)
            }
            Node::Branch { children } => {
                let mut stack = Vec::with_capacity(16);
                let mut mask = TrieMask::default();
                for (i, c) in children.iter().enumerate() {
                    if let Some(c) = c {
                        mask.set_bit(i as u8);
                        stack.push(c.clone());
                    }
                }
                BranchNodeRef::new(&stack, mask).rlp(buf)
            }
        }
    }
}

/// A key's new value (`None`: removed) for [`TrieUpdate::set_split`], and whether the trie
/// held the key before (see [`TrieUpdate::set_known`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyChange {
    /// The hashed key.
    pub key: B256,
    /// The leaf value, `None` to remove the key.
    pub value: Option<Vec<u8>>,
    /// Whether the trie holds the key before this update.
    pub existed: bool,
}

/// What an update did to the node at a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Unchanged,
    Changed,
    Removed,
}

/// Pending changes to one trie: apply updates, then [`TrieUpdate::root`] and
/// [`TrieUpdate::into_writes`].
pub struct TrieUpdate<'s, S: NodeSource> {
    src: &'s S,
    prefix: Vec<u8>,
    /// False for the account trie: its leaves come from [`NodeSource::account_leaf`], and
    /// a rewritten leaf is written as a deletion of its path.
    store_leaves: bool,
    overlay: Overlay,
    /// CPU time the second thread of [`TrieUpdate::set_split`] used.
    helper_cpu: std::time::Duration,
}

/// An update's rewritten nodes by path (`None`: removed).
type Overlay = alloy_primitives::map::HashMap<Vec<u8>, Option<Node>>;

impl<S: NodeSource> std::fmt::Debug for TrieUpdate<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrieUpdate")
            .field("prefix", &self.prefix)
            .field("dirty", &self.overlay.len())
            .finish()
    }
}

/// The nibbles of a 32-byte key.
pub fn nibbles(key: &B256) -> [u8; 64] {
    let mut out = [0u8; 64];
    for (i, b) in key.iter().enumerate() {
        out[2 * i] = b >> 4;
        out[2 * i + 1] = b & 0x0f;
    }
    out
}

fn join(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(a.len() + b.len());
    v.extend_from_slice(a);
    v.extend_from_slice(b);
    v
}

fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

impl<'s, S: NodeSource> TrieUpdate<'s, S> {
    /// Start an update of `owner`'s trie.
    pub fn new(src: &'s S, owner: Owner) -> Self {
        TrieUpdate {
            src,
            prefix: owner.prefix(),
            store_leaves: owner.stores_leaves(),
            overlay: Default::default(),
            helper_cpu: std::time::Duration::ZERO,
        }
    }

    /// CPU time used by the second thread of [`TrieUpdate::set_split`], if it ran: the
    /// calling thread's own is for the caller to measure.
    pub fn helper_cpu(&self) -> std::time::Duration {
        self.helper_cpu
    }

    fn get(&self, path: &[u8]) -> Result<Option<Node>> {
        if let Some(n) = self.overlay.get(path) {
            return Ok(n.clone());
        }
        read_node(self.src, &self.prefix, self.store_leaves, path)
    }

    fn put(&mut self, path: Vec<u8>, node: Node) {
        self.overlay.insert(path, Some(node));
    }

    fn del(&mut self, path: Vec<u8>) {
        self.overlay.insert(path, None);
    }

    /// Set (`Some`) or remove (`None`) the value under a 32-byte key (already hashed).
    pub fn set(&mut self, key: &B256, value: Option<&[u8]>) -> Result<()> {
        self.set_known(key, value, false)
    }

    /// [`TrieUpdate::set`] for a key the trie is known to hold (`existed`), or not. In the
    /// account trie, whose leaves are not stored, the walk then ends at the first path with
    /// no stored node without looking the leaf up in the accounts: it is this key's own.
    /// The leaf's old value stays unknown, so setting the value it already had rewrites
    /// the path (the same root, more work): callers pass only keys whose value changed.
    pub fn set_known(&mut self, key: &B256, value: Option<&[u8]>, existed: bool) -> Result<()> {
        let k = nibbles(key);
        self.update(&[], &k, value, existed)?;
        Ok(())
    }

    /// The node at `path` for an update of `key` (the nibbles left below `path`).
    fn get_for(&self, path: &[u8], key: &[u8], existed: bool) -> Result<Option<Node>> {
        if let Some(n) = self.overlay.get(path) {
            return Ok(n.clone());
        }
        if !existed || self.store_leaves {
            return read_node(self.src, &self.prefix, self.store_leaves, path);
        }
        match self.src.node(&join(&self.prefix, path))? {
            Some(b) => Node::decode(&b).map(Some),
            // An account leaf's value is never empty, so the empty one stands for "unknown"
            // and never compares equal to the value being set.
            None => Ok(Some(Node::Leaf {
                key: key.to_vec(),
                value: Vec::new(),
            })),
        }
    }

    fn update(
        &mut self,
        path: &[u8],
        key: &[u8],
        value: Option<&[u8]>,
        existed: bool,
    ) -> Result<Outcome> {
        let dirty = || Some(RlpNode::default());
        // A branch this update already rewrote, with a child under the key's next nibble:
        // descend and mark that child in place, rather than clone the branch out of the
        // overlay and put it back (the nodes near the root are met by every key).
        if let Some(Some(Node::Branch { children })) = self.overlay.get(path)
            && let Some((&i, rest)) = key.split_first()
            && children[usize::from(i)].is_some()
        {
            let cpath = join(path, &[i]);
            return match self.update(&cpath, rest, value, existed)? {
                Outcome::Unchanged => Ok(Outcome::Unchanged),
                Outcome::Changed => {
                    if let Some(Some(Node::Branch { children })) = self.overlay.get_mut(path) {
                        children[usize::from(i)] = dirty();
                    }
                    Ok(Outcome::Changed)
                }
                Outcome::Removed => match self.overlay.get(path) {
                    Some(Some(Node::Branch { children })) => {
                        let children = children.clone();
                        self.child_removed(path, children, i)
                    }
                    _ => Err(Error::Internal("a rewritten branch went missing".into())),
                },
            };
        }
        match self.get_for(path, key, existed)? {
            None => match value {
                None => Ok(Outcome::Unchanged),
                Some(v) => {
                    self.put(
                        path.to_vec(),
                        Node::Leaf {
                            key: key.to_vec(),
                            value: v.to_vec(),
                        },
                    );
                    Ok(Outcome::Changed)
                }
            },
            Some(Node::Leaf { key: k, value: old }) => {
                if k == key {
                    return match value {
                        None => {
                            self.del(path.to_vec());
                            Ok(Outcome::Removed)
                        }
                        Some(v) if v == old.as_slice() => Ok(Outcome::Unchanged),
                        Some(v) => {
                            self.put(
                                path.to_vec(),
                                Node::Leaf {
                                    key: k,
                                    value: v.to_vec(),
                                },
                            );
                            Ok(Outcome::Changed)
                        }
                    };
                }
                let Some(v) = value else {
                    return Ok(Outcome::Unchanged);
                };
                // Two different keys share this spot: a branch where they part.
                let c = common_prefix(&k, key);
                if c >= k.len() || c >= key.len() {
                    return Err(Error::Internal("trie keys of different lengths".into()));
                }
                let bpath = join(path, &k[..c]);
                let mut children: Box<[Option<Ref>; 16]> = Box::default();
                self.put(
                    join(&bpath, &[k[c]]),
                    Node::Leaf {
                        key: k[c + 1..].to_vec(),
                        value: old,
                    },
                );
                children[usize::from(k[c])] = dirty();
                self.put(
                    join(&bpath, &[key[c]]),
                    Node::Leaf {
                        key: key[c + 1..].to_vec(),
                        value: v.to_vec(),
                    },
                );
                children[usize::from(key[c])] = dirty();
                self.put(bpath, Node::Branch { children });
                if c > 0 {
                    self.put(
                        path.to_vec(),
                        Node::Ext {
                            key: k[..c].to_vec(),
                            child: RlpNode::default(),
                        },
                    );
                }
                Ok(Outcome::Changed)
            }
            Some(Node::Ext { key: k, child }) => {
                if key.starts_with(&k) {
                    let cpath = join(path, &k);
                    return match self.update(&cpath, &key[k.len()..], value, existed)? {
                        Outcome::Unchanged => Ok(Outcome::Unchanged),
                        Outcome::Removed => {
                            self.del(path.to_vec());
                            Ok(Outcome::Removed)
                        }
                        Outcome::Changed => {
                            // The child may have collapsed into a leaf or an extension: merge.
                            if self.absorb(path, &k, cpath, RlpNode::default())? {
                                Ok(Outcome::Changed)
                            } else {
                                self.del(path.to_vec());
                                Ok(Outcome::Removed)
                            }
                        }
                    };
                }
                let Some(v) = value else {
                    return Ok(Outcome::Unchanged);
                };
                // The new key leaves the extension part way: a branch at the fork. The
                // extension's child keeps its path, so its stored reference stays valid.
                let c = common_prefix(&k, key);
                let bpath = join(path, &k[..c]);
                let mut children: Box<[Option<Ref>; 16]> = Box::default();
                if c + 1 < k.len() {
                    self.put(
                        join(&bpath, &[k[c]]),
                        Node::Ext {
                            key: k[c + 1..].to_vec(),
                            child,
                        },
                    );
                    children[usize::from(k[c])] = dirty();
                } else {
                    children[usize::from(k[c])] = Some(child);
                }
                self.put(
                    join(&bpath, &[key[c]]),
                    Node::Leaf {
                        key: key[c + 1..].to_vec(),
                        value: v.to_vec(),
                    },
                );
                children[usize::from(key[c])] = dirty();
                self.put(bpath, Node::Branch { children });
                if c > 0 {
                    self.put(
                        path.to_vec(),
                        Node::Ext {
                            key: k[..c].to_vec(),
                            child: RlpNode::default(),
                        },
                    );
                }
                Ok(Outcome::Changed)
            }
            Some(Node::Branch { mut children }) => {
                let Some((&i, rest)) = key.split_first() else {
                    return Err(Error::Internal("trie key ends at a branch".into()));
                };
                let cpath = join(path, &[i]);
                let outcome = match (&children[usize::from(i)], value) {
                    // An empty slot holds nothing below it: no read needed to know.
                    (None, None) => Outcome::Unchanged,
                    (None, Some(v)) => {
                        self.put(
                            cpath,
                            Node::Leaf {
                                key: rest.to_vec(),
                                value: v.to_vec(),
                            },
                        );
                        Outcome::Changed
                    }
                    (Some(_), _) => self.update(&cpath, rest, value, existed)?,
                };
                match outcome {
                    Outcome::Unchanged => Ok(Outcome::Unchanged),
                    Outcome::Changed => {
                        children[usize::from(i)] = dirty();
                        self.put(path.to_vec(), Node::Branch { children });
                        Ok(Outcome::Changed)
                    }
                    Outcome::Removed => self.child_removed(path, children, i),
                }
            }
        }
    }

    /// Put at `path` the node that reaches the node at `cpath` through the nibbles `via`: a
    /// leaf or an extension there is merged into it (and removed from `cpath`); a branch
    /// stays, under an extension whose reference to it is `branch_ref`. `false` where no
    /// node is at `cpath`.
    fn absorb(
        &mut self,
        path: &[u8],
        via: &[u8],
        cpath: Vec<u8>,
        branch_ref: RlpNode,
    ) -> Result<bool> {
        let merged = match self.get(&cpath)? {
            Some(Node::Leaf { key, value }) => Node::Leaf {
                key: join(via, &key),
                value,
            },
            Some(Node::Ext { key, child }) => Node::Ext {
                key: join(via, &key),
                child,
            },
            Some(Node::Branch { .. }) => {
                self.put(
                    path.to_vec(),
                    Node::Ext {
                        key: via.to_vec(),
                        child: branch_ref,
                    },
                );
                return Ok(true);
            }
            None => return Ok(false),
        };
        self.del(cpath);
        self.put(path.to_vec(), merged);
        Ok(true)
    }

    /// The branch at `path` lost its child `i` (`children`: its references before): drop
    /// the branch, collapse it into its one remaining child, or rewrite it.
    fn child_removed(
        &mut self,
        path: &[u8],
        mut children: Box<[Option<Ref>; 16]>,
        i: u8,
    ) -> Result<Outcome> {
        children[usize::from(i)] = None;
        let left: Vec<usize> = (0..16).filter(|&j| children[j].is_some()).collect();
        match left.as_slice() {
            [] => {
                self.del(path.to_vec());
                Ok(Outcome::Removed)
            }
            [j] => {
                // One child left: the branch collapses into it.
                let j = *j;
                let jpath = join(path, &[j as u8]);
                let r = children[j].clone().unwrap_or_default();
                if !self.absorb(path, &[j as u8], jpath, r)? {
                    return Err(Error::Corrupt("a branch names a missing child".into()));
                }
                Ok(Outcome::Changed)
            }
            _ => {
                self.put(path.to_vec(), Node::Branch { children });
                Ok(Outcome::Changed)
            }
        }
    }

    /// Fill in the references of rewritten nodes below `path` and return the node's
    /// reference. `path` and `buf` are scratch buffers; `path` is given back as it came.
    fn hash_at(&mut self, path: &mut Vec<u8>, buf: &mut Vec<u8>) -> Result<RlpNode> {
        let missing = || Error::Corrupt("a trie reference names a missing node".into());
        // A rewritten node is in the overlay: a leaf is hashed where it lies; another node is
        // taken out of its slot to fill in its references (the walk below only visits longer
        // paths) and put back, with no clone and the key left in place.
        let (mut node, in_overlay) = match self.overlay.get_mut(path.as_slice()) {
            Some(Some(n @ Node::Leaf { .. })) => return Ok(n.rlp(buf)),
            Some(slot) => (slot.take().ok_or_else(missing)?, true),
            None => (self.get(path)?.ok_or_else(missing)?, false),
        };
        let mut changed = false;
        match &mut node {
            Node::Leaf { .. } => {}
            Node::Ext { key, child } => {
                if child.is_empty() {
                    let len = path.len();
                    path.extend_from_slice(key);
                    let r = self.hash_at(path, buf);
                    path.truncate(len);
                    *child = r?;
                    changed = true;
                }
            }
            Node::Branch { children } => {
                for (i, c) in children.iter_mut().enumerate() {
                    if let Some(c) = c
                        && c.is_empty()
                    {
                        path.push(i as u8);
                        let r = self.hash_at(path, buf);
                        path.pop();
                        *c = r?;
                        changed = true;
                    }
                }
            }
        }
        let r = node.rlp(buf);
        if in_overlay {
            if let Some(slot) = self.overlay.get_mut(path.as_slice()) {
                *slot = Some(node);
            }
        } else if changed {
            self.put(path.clone(), node);
        }
        Ok(r)
    }

    /// Set the values under `updates` (sorted by key, none a removal) and hash what they
    /// rewrote, as [`TrieUpdate::set`] for each and then [`TrieUpdate::root`] would, with the
    /// work split between this thread and one more: below a root branch, the subtries of its
    /// children share no node. The other thread reads through `shared`, which must see the
    /// same nodes as this update's source (this one's need not be `Sync`). Returns `false`,
    /// having changed nothing, where a split does not apply (few updates, a removal, a root
    /// that is not a branch, or all keys under one child); the caller then sets them itself.
    pub fn set_split<T: NodeSource + Sync>(
        &mut self,
        shared: &T,
        updates: &[KeyChange],
    ) -> Result<bool> {
        if updates.len() < SPLIT_MIN || updates.iter().any(|u| u.value.is_none()) {
            return Ok(false);
        }
        let Some(Node::Branch { mut children }) = self.get(&[])? else {
            return Ok(false);
        };
        let first = |u: &KeyChange| u.key[0] >> 4;
        // Halves of about equal size that do not share a child of the root.
        let middle = first(&updates[updates.len() / 2]);
        let mut at = updates.partition_point(|u| first(u) < middle);
        if at == 0 {
            at = updates.partition_point(|u| first(u) <= middle);
        }
        if at == updates.len() {
            return Ok(false);
        }
        let (left, right) = updates.split_at(at);
        let (prefix, store_leaves) = (self.prefix.clone(), self.store_leaves);
        let (left, right) = std::thread::scope(|s| {
            // Named, so that profiles and `top -H` tell the trie's work apart.
            let other = std::thread::Builder::new()
                .name("trie-split".into())
                .spawn_scoped(s, || {
                    let cpu = thread_cpu_time();
                    let r = update_children(shared, prefix, store_leaves, right);
                    (r, thread_cpu_time().saturating_sub(cpu))
                });
            let mine = update_children(self.src, self.prefix.clone(), self.store_leaves, left);
            let other = match other.map(|t| t.join()) {
                Ok(Ok((r, cpu))) => {
                    self.helper_cpu += cpu;
                    r
                }
                Ok(Err(_)) => Err(Error::Internal("a trie thread panicked".into())),
                Err(e) => Err(Error::Internal(format!("starting a trie thread: {e}"))),
            };
            (mine, other)
        });
        let (left, right) = (left?, right?);
        let mut changed = false;
        for (refs, overlay) in [left, right] {
            for (i, r) in refs {
                children[usize::from(i)] = Some(r);
                changed = true;
            }
            self.overlay.extend(overlay);
        }
        if changed {
            self.put(Vec::new(), Node::Branch { children });
        }
        Ok(true)
    }

    /// The root hash after the updates so far.
    pub fn root(&mut self) -> Result<B256> {
        if self.get(&[])?.is_none() {
            return Ok(EMPTY_ROOT_HASH);
        }
        let r = self.hash_at(&mut Vec::with_capacity(64), &mut Vec::with_capacity(600))?;
        // The root is always hashed, even when its RLP is short enough to be inlined.
        Ok(r.as_hash().unwrap_or_else(|| keccak256(r.as_slice())))
    }

    /// The node writes to apply: (full key, `Some(encoded)` or `None` to delete). Call
    /// [`TrieUpdate::root`] first so every reference is filled in.
    /// They come sorted by key: a B-tree takes sorted inserts with each page's path still in
    /// cache, where the overlay's hash order would jump across the whole table.
    pub fn into_writes(self) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        let prefix = self.prefix;
        let store_leaves = self.store_leaves;
        let mut out: Vec<(Vec<u8>, Option<Vec<u8>>)> = self
            .overlay
            .into_iter()
            .map(|(p, n)| {
                let n = match n {
                    // Deleted rather than skipped: the path may hold a branch that
                    // collapsed into this leaf, or a leaf stored by an older version.
                    Some(Node::Leaf { .. }) if !store_leaves => None,
                    n => n,
                };
                (join(&prefix, &p), n.map(|n| n.encode()))
            })
            .collect();
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

/// Below this many updates a second thread costs more than it saves.
const SPLIT_MIN: usize = 256;

/// The changed children of a root branch, for [`TrieUpdate::set_split`]: each update applied
/// below its child of the root, then each changed child hashed; returns (child, its new
/// reference) for each changed child, and the rewritten nodes.
fn update_children<T: NodeSource>(
    src: &T,
    prefix: Vec<u8>,
    store_leaves: bool,
    updates: &[KeyChange],
) -> Result<(Vec<(u8, RlpNode)>, Overlay)> {
    let mut up = TrieUpdate {
        src,
        prefix,
        store_leaves,
        overlay: Default::default(),
        helper_cpu: std::time::Duration::ZERO,
    };
    let mut dirty = [false; 16];
    for u in updates {
        let n = nibbles(&u.key);
        match up.update(&n[..1], &n[1..], u.value.as_deref(), u.existed)? {
            Outcome::Unchanged => {}
            Outcome::Changed => dirty[usize::from(n[0])] = true,
            // A value set never removes a node.
            Outcome::Removed => {
                return Err(Error::Internal(
                    "a trie update without removals removed a node".into(),
                ));
            }
        }
    }
    let (mut path, mut buf) = (Vec::with_capacity(64), Vec::with_capacity(600));
    let mut refs = Vec::new();
    for (i, _) in dirty.iter().enumerate().filter(|(_, d)| **d) {
        path.clear();
        path.push(i as u8);
        refs.push((i as u8, up.hash_at(&mut path, &mut buf)?));
    }
    Ok((refs, up.overlay))
}

/// The node at `path` of the trie under `prefix`: the stored one, or for a trie whose
/// leaves are not stored, the leaf its account makes.
fn read_node<S: NodeSource>(
    src: &S,
    prefix: &[u8],
    store_leaves: bool,
    path: &[u8],
) -> Result<Option<Node>> {
    match src.node(&join(prefix, path))? {
        Some(b) => Node::decode(&b).map(Some),
        None if store_leaves => Ok(None),
        None => Ok(src
            .account_leaf(path)?
            .map(|(key, value)| Node::Leaf { key, value })),
    }
}

/// The RLP of the nodes from the root to `key` (an account or storage proof).
pub fn proof<S: NodeSource>(src: &S, owner: Owner, key: &B256) -> Result<Vec<Vec<u8>>> {
    let prefix = owner.prefix();
    walk_proof(key, |path| {
        read_node(src, &prefix, owner.stores_leaves(), path)
    })
}

/// The proof walk over any way of reading the node at a path.
fn walk_proof(
    key: &B256,
    mut get: impl FnMut(&[u8]) -> Result<Option<Node>>,
) -> Result<Vec<Vec<u8>>> {
    let k = nibbles(key);
    let mut path: Vec<u8> = Vec::new();
    let mut out = Vec::new();
    let mut rlp = Vec::new();
    loop {
        let Some(node) = get(&path)? else {
            return Ok(out);
        };
        node.rlp(&mut rlp);
        // Nodes shorter than a hash are inlined in their parent's RLP.
        if path.is_empty() || rlp.len() >= 32 {
            out.push(rlp.clone());
        }
        match node {
            Node::Leaf { .. } => return Ok(out),
            Node::Ext { key, .. } => {
                if !k[path.len()..].starts_with(&key) {
                    return Ok(out);
                }
                path.extend_from_slice(&key);
            }
            Node::Branch { children } => {
                let Some(&i) = k.get(path.len()) else {
                    return Ok(out);
                };
                if children[usize::from(i)].is_none() {
                    return Ok(out);
                }
                path.push(i);
            }
        }
    }
}

impl<S: NodeSource> TrieUpdate<'_, S> {
    /// The proof of `key` in the trie as updated so far: the stored nodes with this update's
    /// rewrites over them. Call [`TrieUpdate::root`] first so every reference is filled in.
    pub fn proof(&self, key: &B256) -> Result<Vec<Vec<u8>>> {
        walk_proof(key, |path| self.get(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, HashMap};

    /// Stored nodes, and the values under the account trie's keys (what `accounts` holds).
    #[derive(Default)]
    struct Mem(HashMap<Vec<u8>, Vec<u8>>, BTreeMap<B256, Vec<u8>>);

    impl NodeSource for Mem {
        fn node(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
            Ok(self.0.get(key).cloned())
        }

        fn account_leaf(&self, path: &[u8]) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
            let (lo, hi) = prefix_range(path);
            Ok(self
                .1
                .range(B256::from(lo)..=B256::from(hi))
                .next()
                .map(|(k, v)| (nibbles(k)[path.len()..].to_vec(), v.clone())))
        }
    }

    impl Mem {
        fn apply(&mut self, writes: Vec<(Vec<u8>, Option<Vec<u8>>)>) {
            for (k, v) in writes {
                match v {
                    Some(v) => self.0.insert(k, v),
                    None => self.0.remove(&k),
                };
            }
        }

        /// Stored nodes that are leaves of the account trie.
        fn account_leaves(&self) -> usize {
            self.0
                .iter()
                .filter(|(k, v)| k[0] == 0 && matches!(Node::decode(v), Ok(Node::Leaf { .. })))
                .count()
        }
    }

    fn reference_root(model: &BTreeMap<B256, Vec<u8>>) -> B256 {
        let mut hb = alloy_trie::HashBuilder::default();
        for (k, v) in model {
            hb.add_leaf(Nibbles::unpack(k), v);
        }
        hb.root()
    }

    /// A small deterministic generator, so the test needs no extra crate.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0 >> 33
        }
    }

    /// `n` hashed keys; every `every`-th shares its first `shared` bytes with the others so
    /// picked, so extensions split and merge.
    fn keys_with_shared_prefixes(n: u64, every: u64, shared: usize, byte: u8) -> Vec<B256> {
        (0..n)
            .map(|i| {
                let mut k = keccak256(i.to_be_bytes());
                if i % every == 0 {
                    k.0[..shared].fill(byte);
                }
                k
            })
            .collect()
    }

    /// Up to `most` random sets and deletes of `keys` in `up`, mirrored in `model`; the
    /// values `value` makes.
    fn random_changes<S: NodeSource>(
        up: &mut TrieUpdate<'_, S>,
        model: &mut BTreeMap<B256, Vec<u8>>,
        keys: &[B256],
        rng: &mut Lcg,
        most: u64,
        value: impl Fn(&mut Lcg) -> Vec<u8>,
    ) {
        for _ in 0..(1 + rng.next() % most) {
            let k = keys[(rng.next() % keys.len() as u64) as usize];
            if rng.next().is_multiple_of(3) {
                up.set(&k, None).expect("delete");
                model.remove(&k);
            } else {
                let v = value(rng);
                // Told whether the key is there, as blocks tell the account trie.
                up.set_known(&k, Some(&v), model.contains_key(&k))
                    .expect("set");
                model.insert(k, v);
            }
        }
    }

    /// Remove every key of `model` from `owner`'s trie: the empty root, and no nodes left
    /// behind.
    fn delete_every_key(mem: &mut Mem, model: &BTreeMap<B256, Vec<u8>>, owner: Owner) {
        let mut up = TrieUpdate::new(&*mem, owner);
        for k in model.keys() {
            up.set(k, None).expect("delete");
        }
        assert_eq!(up.root().expect("root"), EMPTY_ROOT_HASH);
        let writes = up.into_writes();
        mem.apply(writes);
        assert!(mem.0.is_empty(), "{} nodes left", mem.0.len());
    }

    #[test]
    fn incremental_roots_match_a_full_rebuild() {
        let mut mem = Mem::default();
        let mut model = BTreeMap::new();
        let mut rng = Lcg(7);
        // Few distinct keys so inserts, overwrites and deletes all meet.
        let keys = keys_with_shared_prefixes(60, 3, 6, 0xab);
        for round in 0..40 {
            let mut up = TrieUpdate::new(&mem, Owner::Storage(B256::ZERO));
            random_changes(&mut up, &mut model, &keys, &mut rng, 12, |rng| {
                let len = 1 + (rng.next() % 40) as usize;
                (0..len).map(|_| rng.next() as u8).collect()
            });
            let root = up.root().expect("root");
            assert_eq!(root, reference_root(&model), "round {round}");
            mem.apply(up.into_writes());
        }
        delete_every_key(&mut mem, &model, Owner::Storage(B256::ZERO));
    }

    #[test]
    fn a_split_update_matches_one_thread() {
        for owner in [Owner::Accounts, Owner::Storage(B256::repeat_byte(3))] {
            let mut mem = Mem::default();
            let mut model = BTreeMap::new();
            let mut rng = Lcg(11);
            // Some keys share long prefixes, so extensions split under the root's children.
            let keys = keys_with_shared_prefixes(4_000, 97, 5, 0x5c);
            let value = |rng: &mut Lcg| alloy_rlp::encode(rng.next());
            for round in 0..6 {
                // Sorted by key, as a BTreeMap gives them.
                let updates: Vec<KeyChange> = (0..700)
                    .map(|_| {
                        let k = keys[(rng.next() % keys.len() as u64) as usize];
                        (k, Some(value(&mut rng)))
                    })
                    .collect::<BTreeMap<_, _>>()
                    .into_iter()
                    .map(|(key, value)| KeyChange {
                        key,
                        value,
                        existed: model.contains_key(&key),
                    })
                    .collect();
                let mut one = TrieUpdate::new(&mem, owner);
                for u in &updates {
                    one.set(&u.key, u.value.as_deref()).expect("set");
                }
                let root_one = one.root().expect("root");
                let writes_one = one.into_writes();
                let mut split = TrieUpdate::new(&mem, owner);
                // The first round starts from an empty trie: no root branch to split under.
                assert_eq!(
                    split.set_split(&mem, &updates).expect("split"),
                    round > 0,
                    "round {round}"
                );
                if round == 0 {
                    for u in &updates {
                        split.set(&u.key, u.value.as_deref()).expect("set");
                    }
                }
                assert_eq!(split.root().expect("root"), root_one, "round {round}");
                assert_eq!(split.into_writes(), writes_one, "round {round}");
                for u in updates {
                    model.insert(u.key, u.value.expect("set"));
                }
                assert_eq!(root_one, reference_root(&model), "round {round}");
                mem.apply(writes_one);
                if owner == Owner::Accounts {
                    mem.1 = model.clone();
                }
            }
            // Where a split does not apply, nothing is changed.
            let change = |key: B256, value: Vec<u8>| KeyChange {
                key,
                value: Some(value),
                existed: false,
            };
            let some: Vec<KeyChange> = model.iter().map(|(k, v)| change(*k, v.clone())).collect();
            let mut up = TrieUpdate::new(&mem, owner);
            assert!(!up.set_split(&mem, &some[..SPLIT_MIN - 1]).expect("few"));
            let mut with_removal = some[..SPLIT_MIN * 2].to_vec();
            with_removal[7].value = None;
            assert!(!up.set_split(&mem, &with_removal).expect("removal"));
            let one_child: Vec<KeyChange> = (0..10_000u64)
                .map(|i| keccak256(i.to_be_bytes()))
                .filter(|k| k[0] >> 4 == 9)
                .take(SPLIT_MIN)
                .map(|k| (k, vec![0x01]))
                .collect::<BTreeMap<_, _>>()
                .into_iter()
                .map(|(k, v)| change(k, v))
                .collect();
            assert_eq!(one_child.len(), SPLIT_MIN);
            assert!(!up.set_split(&mem, &one_child).expect("one child"));
            assert!(up.into_writes().is_empty());
        }
    }

    #[test]
    fn proofs_verify_against_the_root() {
        let mut mem = Mem::default();
        let mut up = TrieUpdate::new(&mem, Owner::Accounts);
        let mut model = BTreeMap::new();
        for i in 0..200u64 {
            let k = keccak256(i.to_be_bytes());
            let v = alloy_rlp::encode(keccak256(k).as_slice());
            up.set(&k, Some(&v)).expect("set");
            model.insert(k, v);
        }
        let root = up.root().expect("root");
        mem.apply(up.into_writes());
        mem.1 = model.clone();
        assert_eq!(mem.account_leaves(), 0, "the account trie stores no leaves");
        for (k, v) in model.iter().take(20) {
            let nodes: Vec<alloy_primitives::Bytes> = proof(&mem, Owner::Accounts, k)
                .expect("proof")
                .into_iter()
                .map(Into::into)
                .collect();
            alloy_trie::proof::verify_proof(root, Nibbles::unpack(k), Some(v.clone()), &nodes)
                .expect("valid proof");
        }
        let absent = keccak256(b"absent");
        let nodes: Vec<alloy_primitives::Bytes> = proof(&mem, Owner::Accounts, &absent)
            .expect("proof")
            .into_iter()
            .map(Into::into)
            .collect();
        alloy_trie::proof::verify_proof(root, Nibbles::unpack(absent), None, &nodes)
            .expect("exclusion proof");
    }

    #[test]
    fn an_update_proves_its_own_root_before_it_is_written() {
        let mut mem = Mem::default();
        let mut model = BTreeMap::new();
        let mut up = TrieUpdate::new(&mem, Owner::Accounts);
        for i in 0..300u64 {
            let k = keccak256(i.to_be_bytes());
            let v = alloy_rlp::encode(i);
            up.set(&k, Some(&v)).expect("set");
            model.insert(k, v);
        }
        up.root().expect("root");
        mem.apply(up.into_writes());
        mem.1 = model.clone();
        // Over the stored trie: change some keys, remove some, add some; nothing written.
        let mut up = TrieUpdate::new(&mem, Owner::Accounts);
        for i in 0..400u64 {
            let k = keccak256(i.to_be_bytes());
            match i % 4 {
                0 => {
                    up.set(&k, None).expect("remove");
                    model.remove(&k);
                }
                1 => {
                    let v = alloy_rlp::encode(i * 7 + 1);
                    up.set(&k, Some(&v)).expect("change");
                    model.insert(k, v);
                }
                _ if i >= 300 => {
                    let v = alloy_rlp::encode(i);
                    up.set(&k, Some(&v)).expect("add");
                    model.insert(k, v);
                }
                _ => {}
            }
        }
        let root = up.root().expect("root");
        assert_eq!(root, reference_root(&model));
        for i in 0..400u64 {
            let k = keccak256(i.to_be_bytes());
            let nodes: Vec<alloy_primitives::Bytes> = up
                .proof(&k)
                .expect("proof")
                .into_iter()
                .map(Into::into)
                .collect();
            alloy_trie::proof::verify_proof(
                root,
                Nibbles::unpack(k),
                model.get(&k).cloned(),
                &nodes,
            )
            .unwrap_or_else(|e| panic!("key {i}: {e}"));
        }
    }

    /// The account trie, starting from nodes an earlier version wrote (leaves stored), then
    /// updated with leaves read from the account values: every root matches a full rebuild,
    /// no leaf written since is stored, and a stored leaf that remains always matches its
    /// account.
    #[test]
    fn the_node_cache_is_complete_for_what_it_covers() {
        let key = |path: &[u8]| [&[0u8][..], path].concat();
        let cost = |p: &[u8], v: &[u8]| NodeCache::cost(p.len(), v.len());
        // Depths are all or nothing: the budget fits depths 0 and 1 only.
        let per_depth = [cost(&[], &[1; 100]), cost(&[1], &[2; 50]) * 2, 1_000, 5];
        let budget = per_depth[0] + per_depth[1] + 10;
        assert_eq!(NodeCache::depths_within(&per_depth, budget), 2);
        assert_eq!(NodeCache::depths_within(&per_depth, usize::MAX), 65);
        assert_eq!(NodeCache::depths_within(&per_depth, 0), 0);
        let mut c = NodeCache::new(2, budget);
        c.insert_loaded(&[], &[1; 100]);
        c.insert_loaded(&[1], &[2; 50]);
        c.insert_loaded(&[3], &[2; 50]);
        c.insert_loaded(&[1, 2], &[3; 10]);
        assert_eq!(c.len(), 3, "a path it does not cover is not loaded");
        assert_eq!(c.get(&key(&[1])), Some(Some(&[2u8; 50][..])));
        assert_eq!(
            c.get(&key(&[2])),
            Some(None),
            "covered and absent: nothing stored"
        );
        assert_eq!(c.get(&key(&[1, 2])), None, "not covered: ask the table");
        let storage = Owner::Storage(B256::ZERO).prefix();
        assert_eq!(c.get(&storage), None, "storage tries are not cached");
        // A block's writes: a removal, a replacement, a deeper node it skips, a storage node.
        c.apply(&[
            (key(&[1]), None),
            (key(&[3]), Some(vec![4; 60])),
            (key(&[3, 3]), Some(vec![5; 10])),
            ([storage.clone(), vec![1]].concat(), Some(vec![6; 10])),
        ]);
        assert_eq!(c.get(&key(&[1])), Some(None));
        assert_eq!(c.get(&key(&[3])), Some(Some(&[4u8; 60][..])));
        assert_eq!(c.len(), 2);
        assert_eq!(c.bytes(), cost(&[], &[1; 100]) + cost(&[3], &[4; 60]));
        // Past the budget it gives up its deepest level and stays complete for the rest.
        c.apply(&[(key(&[7]), Some(vec![8; 200]))]);
        assert_eq!(c.covers(), 1);
        assert_eq!(c.get(&key(&[3])), None);
        assert_eq!(c.get(&key(&[])), Some(Some(&[1u8; 100][..])));
        assert_eq!((c.len(), c.bytes()), (1, cost(&[], &[1; 100])));
    }

    #[test]
    fn account_trie_reads_its_leaves_from_the_accounts() {
        let mut mem = Mem::default();
        let mut model = BTreeMap::new();
        let mut rng = Lcg(11);
        let keys = keys_with_shared_prefixes(80, 4, 5, 0x5c);
        let mut old = TrieUpdate::new(&mem, Owner::Accounts);
        old.store_leaves = true;
        for k in keys.iter().step_by(2) {
            let v = alloy_rlp::encode(k.as_slice());
            old.set(k, Some(&v)).expect("set");
            model.insert(*k, v);
        }
        assert_eq!(old.root().expect("root"), reference_root(&model));
        mem.apply(old.into_writes());
        mem.1 = model.clone();
        let stored_before = mem.account_leaves();
        assert!(stored_before > 0, "the old format stores leaves");
        for round in 0..40 {
            let mut up = TrieUpdate::new(&mem, Owner::Accounts);
            random_changes(&mut up, &mut model, &keys, &mut rng, 10, |rng| {
                alloy_rlp::encode(rng.next())
            });
            assert_eq!(
                up.root().expect("root"),
                reference_root(&model),
                "round {round}"
            );
            mem.apply(up.into_writes());
            mem.1 = model.clone();
            for (k, v) in &mem.0 {
                if let Ok(Node::Leaf { key, value }) = Node::decode(v) {
                    let path = &k[1..];
                    let full: Vec<u8> = path.iter().chain(&key).copied().collect();
                    let hit = model.iter().find(|(mk, _)| nibbles(mk).as_slice() == full);
                    assert_eq!(hit.map(|(_, v)| v), Some(&value), "a stale stored leaf");
                }
            }
        }
        assert!(mem.account_leaves() < stored_before);
        delete_every_key(&mut mem, &model, Owner::Accounts);
    }
}
