//! commons-net: libp2p peering between appliances — identity, discovery (kademlia; mDNS off by
//! default), gossip of transactions, blocks and announcements, and content-addressed fetches of
//! blobs, datanet versions, adapters and DA batches, verifying every hash.
//!
//! Not built yet: a later issue fills this crate.
