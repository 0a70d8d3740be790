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
            Store::Redis(store) => store.save_ohip_offset(source, offset).await,
        }
    }
}
