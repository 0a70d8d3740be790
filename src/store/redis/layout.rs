//! Where events and dedupe keys live in Redis.
//!
//! On a single Redis: one stream (`store.stream`, default `porter:events`) and dedupe keys
//! `<prefix>:dedupe:<key>`. On Redis Cluster, a Lua script may only touch keys of one hash
//! slot, and dedupe-and-enqueue must be one script; so the stream is split into `shards`
//! streams `<stream>:{<n>}`, and an event's dedupe key `<prefix>:dedupe:{<n>}:<key>` carries
//! the same hash tag `{<n>}`, with `n` chosen by a hash of the dedupe key. Consumers read every
//! shard.
//!
//! **The shard function is part of the storage format**: changing it, or the shard count, on
//! a running deployment moves dedupe keys to other slots, so redeliveries inside the dedupe
//! window would be enqueued again. Both are fixed here and documented.

/// Key names for one deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    prefix: String,
    stream: String,
    /// `None` on a single Redis; the shard count on a cluster.
    shards: Option<u16>,
}

/// Where one event goes: its dedupe key and its stream, in one hash slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub dedupe_key: String,
    pub stream: String,
    /// The stream's shard (0 on a single Redis).
    pub shard: usize,
}

impl Layout {
    pub fn single(prefix: &str, stream: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
            stream: stream.to_owned(),
            shards: None,
        }
    }

    pub fn cluster(prefix: &str, stream: &str, shards: u16) -> Self {
        Self {
            prefix: prefix.to_owned(),
            stream: stream.to_owned(),
            shards: Some(shards.max(1)),
        }
    }

    /// Every stream events are appended to.
    pub fn streams(&self) -> Vec<String> {
        match self.shards {
            None => vec![self.stream.clone()],
            Some(shards) => (0..shards).map(|n| self.shard_stream(n)).collect(),
        }
    }

    /// The dedupe key and stream of an event.
    pub fn place(&self, dedupe_key: &str) -> Placement {
        match self.shards {
            None => Placement {
                dedupe_key: format!("{}:dedupe:{dedupe_key}", self.prefix),
                stream: self.stream.clone(),
                shard: 0,
            },
            Some(shards) => {
                let shard = shard_of(dedupe_key, shards);
                Placement {
                    dedupe_key: format!("{}:dedupe:{{{shard}}}:{dedupe_key}", self.prefix),
                    stream: self.shard_stream(shard),
                    shard: usize::from(shard),
                }
            }
        }
    }

    /// How many stream shards there are (1 on a single Redis).
    pub fn shard_count(&self) -> usize {
        self.shards.map_or(1, usize::from)
    }

    /// The delivery schedule of a destination for one stream shard: a sorted set of stream
    /// entry ids by due time, in the shard's hash slot (scripts touch it with the stream).
    pub fn schedule(&self, destination: &str, shard: usize) -> String {
        match self.shards {
            None => format!("{}:schedule:{destination}", self.prefix),
            Some(_) => format!("{}:schedule:{destination}:{{{shard}}}", self.prefix),
        }
    }

    /// Where a destination's consumer group has got to on one stream shard: the latest entry
    /// porter scheduled (or, for groups services read themselves, the group's last delivered
    /// entry), in the shard's hash slot. A group Redis lost is recreated there.
    pub fn cursor(&self, destination: &str, shard: usize) -> String {
        match self.shards {
            None => format!("{}:cursor:{destination}", self.prefix),
            Some(_) => format!("{}:cursor:{destination}:{{{shard}}}", self.prefix),
        }
    }

    /// The hold on a destination's deliveries for one stream shard (`pause`): while the key
    /// exists nothing is leased. In the shard's hash slot, beside its schedule.
    pub fn paused(&self, destination: &str, shard: usize) -> String {
        match self.shards {
            None => format!("{}:paused:{destination}", self.prefix),
            Some(_) => format!("{}:paused:{destination}:{{{shard}}}", self.prefix),
        }
    }

    /// An OHIP stream source's saved offset.
    pub fn ohip_offset(&self, source: &str) -> String {
        format!("{}:ohip:{source}:offset", self.prefix)
    }

    /// The status an OHIP stream's connector last published.
    pub fn ohip_status(&self, source: &str) -> String {
        format!("{}:ohip:{source}:status", self.prefix)
    }

    /// The single-consumer lease of one OHIP stream (named by a hash of gateway, app key and
    /// chain: the app key itself never appears in a key name).
    pub fn ohip_lease(&self, stream: &str) -> String {
        format!("{}:ohip:lease:{stream}", self.prefix)
    }

    /// The attempt log of one entry for one destination (a list of JSON attempts).
    pub fn attempts(&self, destination: &str, shard: usize, entry: &str) -> String {
        format!("{}:attempts:{destination}:{shard}:{entry}", self.prefix)
    }

    /// A message's status mark (`<source>:<hash of the message id>`, see
    /// `store/statuses.rs`).
    pub fn status(&self, mark: &str) -> String {
        format!("{}:status:{mark}", self.prefix)
    }

    /// A destination's token bucket (`rate`), shared by every instance.
    pub fn rate(&self, destination: &str) -> String {
        format!("{}:rate:{destination}", self.prefix)
    }

    /// The dead-letter stream.
    pub fn dead_letters(&self) -> String {
        format!("{}:dlq", self.prefix)
    }

    /// The stream entries erasures took, as `<shard>:<entry>` by time (a sorted set in the
    /// dead-letter stream's hash slot): a job in flight during an erasure is not
    /// dead-lettered afterwards (`dead_letter.lua`).
    pub fn erased(&self) -> String {
        format!("{{{}}}:erased", self.dead_letters())
    }

    /// The audit records of erasures (a stream, never trimmed).
    pub fn erasures(&self) -> String {
        format!("{}:erasures", self.prefix)
    }

    /// The stream of shard `shard`.
    pub fn stream(&self, shard: usize) -> String {
        match self.shards {
            None => self.stream.clone(),
            Some(_) => self.shard_stream(shard as u16),
        }
    }

    /// The stream that keeps quarantined bodies (on a cluster, hash-tagged so that its byte
    /// count shares its slot).
    pub fn quarantine(&self) -> String {
        match self.shards {
            None => format!("{}:quarantine", self.prefix),
            Some(_) => format!("{}:{{quarantine}}", self.prefix),
        }
    }

    /// The stream of archived raw requests ([`crate::store::archive`]): one key, so one slot (on a
    /// cluster hash-tagged, so that its byte count and tombstones share it).
    pub fn archive(&self) -> String {
        match self.shards {
            None => format!("{}:archive", self.prefix),
            Some(_) => format!("{}:{{archive}}", self.prefix),
        }
    }

    /// The bytes of the entries in [`Layout::archive`].
    pub fn archive_bytes(&self) -> String {
        format!("{}:bytes", self.archive())
    }

    /// The tombstones of erasures that archive writes check ([`crate::store::erase`]): a sorted set
    /// of event ids and body digests by the time (ms) each is forgotten.
    pub fn archive_tombstones(&self) -> String {
        format!("{}:erased", self.archive())
    }

    /// A cluster's archive before it was hash-tagged (`<prefix>:archive`): still listed and
    /// erased until it expires (a retention after its last append).
    pub fn legacy_archive(&self) -> Option<String> {
        self.shards.map(|_| format!("{}:archive", self.prefix))
    }

    /// The tombstones of erasures that the quarantine checks (bodies' digests).
    pub fn quarantine_tombstones(&self) -> String {
        format!("{}:erased", self.quarantine())
    }

    /// The bytes of the bodies in [`Layout::quarantine`].
    pub fn quarantine_bytes(&self) -> String {
        format!("{}:bytes", self.quarantine())
    }

    fn shard_stream(&self, shard: u16) -> String {
        format!("{}:{{{shard}}}", self.stream)
    }
}

/// FNV-1a (64 bit): a stable hash, the same across versions and platforms (the shard
/// function, and delivery's retry jitter).
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// FNV-1a of the key, modulo the shard count.
fn shard_of(key: &str, shards: u16) -> u16 {
    // The remainder is below `shards`, which fits in u16.
    (fnv1a(key.as_bytes()) % u64::from(shards)) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_redis_uses_the_configured_names() {
        let layout = Layout::single("porter", "porter:events");
        assert_eq!(layout.streams(), ["porter:events"]);
        assert_eq!(
            layout.place("evt_1"),
            Placement {
                dedupe_key: "porter:dedupe:evt_1".into(),
                stream: "porter:events".into(),
                shard: 0,
            }
        );
    }

    #[test]
    fn on_a_cluster_key_and_stream_share_a_hash_tag() {
        let layout = Layout::cluster("porter", "porter:events", 16);
        assert_eq!(layout.streams().len(), 16);
        for i in 0..200 {
            let placement = layout.place(&format!("evt_{i:032x}"));
            let tag = |s: &str| s[s.find('{').expect("tag")..=s.find('}').expect("tag")].to_owned();
            assert_eq!(tag(&placement.dedupe_key), tag(&placement.stream));
            assert_eq!(
                tag(&layout.cursor("d", placement.shard)),
                tag(&placement.stream)
            );
            assert!(layout.streams().contains(&placement.stream));
        }
    }

    #[test]
    fn the_shard_function_is_stable() {
        // Part of the storage format: these values must never change (they were checked
        // against an independent FNV-1a implementation).
        assert_eq!(shard_of("evt_00000000000000000000000000000000", 16), 7);
        assert_eq!(shard_of("evt_2760e357af9fd8f8a18c0283613db208", 16), 14);
        assert_eq!(shard_of("", 16), 5);
    }

    #[test]
    fn shards_spread_keys() {
        let mut counts = [0u32; 16];
        for i in 0..16_000 {
            counts[usize::from(shard_of(&format!("evt_{i:032x}"), 16))] += 1;
        }
        assert!(
            counts.iter().all(|&c| (700..1300).contains(&c)),
            "{counts:?}"
        );
    }
}
