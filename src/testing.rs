//! What porter's own tests, its load generator (`porter-load`) and its binary reach inside the
//! library, in one place. **Not an API**: none of it is promised to anyone else, and it changes
//! with porter's internals. Programs embedding porter use [`crate::embed`].
//!
//! The modules mirror porter's own, so that a test names `testing::store::Store` where the
//! code says `store::Store`.

pub mod admin {
    pub use crate::admin::{Admin, serve};
}

pub mod app {
    pub use crate::app::{App, store_for};
}

pub mod clock {
    pub use crate::clock::{Clock, Hand};
}

pub mod commands {
    pub use crate::commands::run;

    pub mod send {
        pub use crate::commands::send::{Prepared, default_content_type, prepare};
    }
}

pub mod config {
    pub use crate::config::{
        Config, ConfigOrigin, DestinationKind, EMBEDDED_DEFAULT, Filter, SourceConfig, route_table,
    };
}

pub mod delivery {
    pub use crate::delivery::{Deliveries, Handler, HandlerError, Plan, Response, schedules_for};

    #[cfg(feature = "amqp")]
    pub mod amqp {
        pub use crate::delivery::amqp::AmqpSender;
    }

    #[cfg(feature = "nats")]
    pub mod nats {
        pub use crate::delivery::nats::NatsSender;
    }
}

pub mod ohip {
    pub use crate::ohip::{Connectors, State, Status};
}

pub mod privacy {
    pub use crate::privacy::{Person, token};
}

pub mod reprocess {
    pub use crate::reprocess::{Options, Summary, run};
}

pub mod routes {
    pub use crate::routes::RouteTable;
}

pub mod server {
    pub use crate::server::{Clock, Gateway, serve, shutdown_signal};
}

pub mod store {
    pub use crate::store::{
        Archived, ArchivedOutcome, Attempt, Job, JobState, Lease, LocalSchedule, LocalSettings,
        LocalStore, MemorySchedule, MemoryStore, Next, Outcome, QUARANTINE_MAX_BYTES, Quarantined,
        RedisSchedule, RedisSettings, RedisStore, RedisTarget, ReplicaWait, Schedule, Schedules,
        Store,
    };

    pub mod archive {
        pub use crate::store::archive::DEFAULT_MAX_BYTES;
    }

    pub mod erase {
        pub use crate::store::erase::Erase;
    }

    pub mod inspect {
        pub use crate::store::inspect::EventQuery;
    }
}

pub mod telemetry {
    pub use crate::telemetry::{LogFormat, init_logging, metrics_handle};
}

pub mod trace {
    pub use crate::trace::{Traceparent, Tracing, enabled};
}
