//! The route table: exact request paths to (source, endpoint).
//!
//! Matching is an exact lookup of the raw request path, with no decoding and no
//! normalisation: `/webhooks/sms/../whatsapp` or `/webhooks%2Fsms` match nothing, so a path
//! trick can never reach a source other than the one the provider was given. Config loading
//! guarantees that no two sources claim one route and that none claims a built-in route.

use std::collections::HashMap;

use porter_providers::{Endpoint, Provider};

/// Routes porter answers itself.
pub(crate) const RESERVED_PATHS: &[&str] = &["/healthz", "/readyz"];

/// Where a route leads.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    /// Index into the gateway's sources.
    pub source: usize,
    pub endpoint: &'static Endpoint,
}

/// Every source route, by exact path.
#[derive(Debug, Default)]
pub struct RouteTable {
    routes: HashMap<String, Route>,
}

impl RouteTable {
    /// The routes of `sources` (each a base path and its provider), in order: a route leads
    /// to its source's index.
    pub fn new<'a>(sources: impl IntoIterator<Item = (&'a str, Provider)>) -> Self {
        let mut routes = HashMap::new();
        for (index, (path, provider)) in sources.into_iter().enumerate() {
            for endpoint in provider.endpoints() {
                routes.insert(
                    format!("{path}{}", endpoint.suffix),
                    Route {
                        source: index,
                        endpoint,
                    },
                );
            }
        }
        Self { routes }
    }

    pub fn get(&self, path: &str) -> Option<&Route> {
        self.routes.get(path)
    }

    /// `(path, route)` pairs sorted by path, for printing.
    pub fn sorted(&self) -> Vec<(&str, &Route)> {
        let mut rows: Vec<_> = self.routes.iter().map(|(p, r)| (p.as_str(), r)).collect();
        rows.sort_by_key(|(path, _)| *path);
        rows
    }
}
