//! Where an OHIP stream source's offset is kept: the offset of the last event stored, saved
//! only after that event's dedupe-and-enqueue succeeded, read back by every (re)subscribe.
//!
//! In Redis it is one key per source (`{prefix}:ohip:{source}:offset`), so a restarted or
//! another instance on the same Redis resumes where the stream was; in memory it lives as long
//! as the process (the stream then resumes from OHIP's own cursor after a restart).

use super::{Store, StoreError};

impl Store {
    /// The saved offset of stream source `source`.
    pub async fn ohip_offset(&self, source: &str) -> Result<Option<String>, StoreError> {
        match self {
            Store::Memory(store) => Ok(store.ohip_offset(source)),
            Store::Local(store) => Ok(store.memory().ohip_offset(source)),
            Store::Redis(store) => store.ohip_offset(source).await,
        }
    }

    /// Saves `offset` for `source` (after its event is stored), or sets it (`porter ohip seek`).
    pub async fn save_ohip_offset(&self, source: &str, offset: &str) -> Result<(), StoreError> {
        match self {
            Store::Memory(store) => {
                store.save_ohip_offset(source, offset);
                Ok(())
            }
            Store::Local(store) => {
                store
                    .write(super::local::record::Record::Offset {
                        source: source.to_owned(),
                        offset: offset.to_owned(),
                    })
                    .await
            }
            Store::Redis(store) => store.save_ohip_offset(source, offset).await,
        }
    }
}

/// Takes or extends the lease `key` for `holder` for `ttl`; `false` when another holder has
/// it. Only one instance sharing a Redis store holds a stream's lease, so only one connects
/// (OHIP allows one consumer per app key and chain). A memory store is one process: always
/// its own holder.
const LEASE: &str = r"
local current = redis.call('GET', KEYS[1])
if current == false or current == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
";

/// Releases the lease `key` if `holder` has it.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

impl Store {
    /// See [`LEASE`].
    pub async fn ohip_lease(
        &self,
        key: &str,
        holder: &str,
        ttl: std::time::Duration,
    ) -> Result<bool, StoreError> {
        match self {
            Store::Memory(_) | Store::Local(_) => Ok(true),
            Store::Redis(store) => {
                let mut connection = store.connection().await?;
                let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
                let taken: i64 = redis::Script::new(LEASE)
                    .key(store.layout().ohip_lease(key))
                    .arg(holder)
                    .arg(ttl_ms)
                    .invoke_async(&mut connection)
                    .await?;
                Ok(taken == 1)
            }
        }
    }

    /// Gives the lease up (on shutdown), so another instance takes over at once.
    pub async fn release_ohip_lease(&self, key: &str, holder: &str) -> Result<(), StoreError> {
        match self {
            Store::Memory(_) | Store::Local(_) => Ok(()),
            Store::Redis(store) => {
                let mut connection = store.connection().await?;
                redis::Script::new(RELEASE)
                    .key(store.layout().ohip_lease(key))
                    .arg(holder)
                    .invoke_async::<i64>(&mut connection)
                    .await?;
                Ok(())
            }
        }
    }

    /// Who holds the lease `key` (Redis), for `porter ohip status`.
    pub async fn ohip_lease_holder(&self, key: &str) -> Result<Option<String>, StoreError> {
        match self {
            Store::Memory(_) | Store::Local(_) => Ok(None),
            Store::Redis(store) => {
                let mut connection = store.connection().await?;
                redis::cmd("GET")
                    .arg(store.layout().ohip_lease(key))
                    .query_async(&mut connection)
                    .await
                    .map_err(StoreError::from)
            }
        }
    }
}

impl Store {
    /// Publishes a stream connector's status (JSON) for `porter ohip status` (Redis only: a
    /// memory store is read inside its process).
    pub async fn save_ohip_status(&self, source: &str, status: &str) -> Result<(), StoreError> {
        match self {
            Store::Memory(_) | Store::Local(_) => Ok(()),
            Store::Redis(store) => {
                let mut connection = store.connection().await?;
                redis::cmd("SET")
                    .arg(store.layout().ohip_status(source))
                    .arg(status)
                    .query_async::<()>(&mut connection)
                    .await
                    .map_err(StoreError::from)
            }
        }
    }

    /// The status a connector last published.
    pub async fn ohip_status(&self, source: &str) -> Result<Option<String>, StoreError> {
        match self {
            Store::Memory(_) | Store::Local(_) => Ok(None),
            Store::Redis(store) => {
                let mut connection = store.connection().await?;
                redis::cmd("GET")
                    .arg(store.layout().ohip_status(source))
                    .query_async(&mut connection)
                    .await
                    .map_err(StoreError::from)
            }
        }
    }
}
