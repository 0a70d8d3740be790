//! Where a Redis store is: one Redis, or a cluster's seed nodes.

/// Where to find Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisTarget {
    /// `store.url`: one Redis (or a primary behind a proxy).
    Single(String),
    /// `store.urls`: Redis Cluster seed nodes.
    Cluster(Vec<String>),
}
