//! Where a Redis store is: one Redis, or a cluster's seed nodes.

/// Where to find Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisTarget {
    /// `store.url`: one Redis (or a primary behind a proxy).
    Single(String),
    /// `store.urls`: Redis Cluster seed nodes.
    Cluster(Vec<String>),
}

/// `[store] wait_replicas`: after each dedupe-and-enqueue, Redis's `WAIT` for this many
/// replicas to confirm the write (within `timeout`) before porter answers. Fewer confirmations
/// answer 503: the provider retries, and the retry is answered as a duplicate once the write
/// has reached the replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaWait {
    pub replicas: u32,
    pub timeout: std::time::Duration,
}
