//! The anti-entropy loop (cluster mode): every `cluster.anti_entropy_interval_sec` it checks the
//! replicas of the shards this peer is the reference of, repairs steady divergence (see
//! `collection::anti_entropy`) and reports it on `/metrics`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use super::Node;
use crate::collection::anti_entropy::Suspects;

/// Starts the loop; `None` when the interval is 0.
pub fn spawn(node: Arc<Node>) -> Option<JoinHandle<()>> {
    let interval = node.settings.cluster.anti_entropy_interval_sec;
    if interval == 0 {
        return None;
    }
    Some(tokio::spawn(async move {
        let mut suspects: HashMap<String, Suspects> = HashMap::new();
        let mut divergent: HashMap<String, u64> = HashMap::new();
        let mut tick = tokio::time::interval(Duration::from_secs(interval));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let collections = node.collections();
            suspects.retain(|name, _| collections.iter().any(|c| &c.name == name));
            for collection in collections {
                let mine = suspects.entry(collection.name.clone()).or_default();
                match collection.check_replicas(mine).await {
                    Ok(o) => {
                        let before = divergent
                            .insert(collection.name.clone(), o.divergent_buckets)
                            .unwrap_or(0);
                        node.metrics.observe_anti_entropy(
                            o.compared,
                            o.divergent_buckets,
                            o.repairs,
                            o.repaired_points,
                            before,
                        );
                    }
                    Err(e) => {
                        tracing::debug!(collection = %collection.name, error = %e, "anti-entropy check failed")
                    }
                }
            }
        }
    }))
}
