//! Publishing durable TXT changes to the distribution backend.

use std::sync::{Arc, OnceLock};

use certdns_distribution::{Change, Distribution};
use certdns_store::Store;

use crate::reconcile::{self, ReconcileHandle};

/// Publishes changes that are already durable. A failure is not the client's
/// problem: it is logged, counted, and repaired by a reconcile started on demand.
pub struct Publisher {
    store: Arc<dyn Store>,
    distribution: Arc<dyn Distribution>,
    keep: usize,
    republisher: OnceLock<ReconcileHandle>,
}

impl Publisher {
    pub fn new(store: Arc<dyn Store>, distribution: Arc<dyn Distribution>, keep: usize) -> Self {
        Self { store, distribution, keep, republisher: OnceLock::new() }
    }

    pub async fn publish(&self, changes: &[Change]) {
        let Err(e) = self.distribution.publish(changes).await else { return };
        metrics::counter!("certdns_api_publish_failures_total").increment(1);
        let subdomains: Vec<String> = changes.iter().map(|c| c.subdomain().to_string()).collect();
        tracing::warn!(error = %e, subdomains = ?subdomains, "publishing TXT changes failed; a reconcile will republish them");
        self.republisher
            .get_or_init(|| reconcile::on_demand(self.store.clone(), self.distribution.clone(), self.keep))
            .poke();
    }
}
