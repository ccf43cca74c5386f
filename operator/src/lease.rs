//! Leader election with a `coordination.k8s.io/v1` Lease, so several operator replicas can run
//! and only one reconciles. Optimistic concurrency (resourceVersion) decides races; a leader that
//! cannot renew within the renew deadline stops (the process exits and restarts as a follower).

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use kube::Client;
use tracing::{info, warn};

use crate::error::Error;
use crate::metrics::Metrics;

/// Lease timing and identity.
#[derive(Clone, Debug)]
pub struct LeaseSettings {
    pub name: String,
    pub namespace: String,
    /// This replica's identity (its pod name).
    pub identity: String,
    /// How long a lease is valid after its last renewal.
    pub lease_duration: Duration,
    /// A leader that could not renew for this long steps down (must be < lease_duration).
    pub renew_deadline: Duration,
    /// Pause between acquire/renew attempts.
    pub retry_period: Duration,
}

impl LeaseSettings {
    /// Defaults: 15 s lease, 10 s renew deadline, 2 s retry (as client-go).
    pub fn new(name: &str, namespace: &str, identity: &str) -> LeaseSettings {
        LeaseSettings {
            name: name.to_string(),
            namespace: namespace.to_string(),
            identity: identity.to_string(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// The outcome of one acquire-or-renew attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaseState {
    /// This replica holds the lease.
    Leader,
    /// Another replica holds an unexpired lease.
    Follower { holder: Option<String> },
}

/// Acquires and renews one Lease.
#[derive(Clone)]
pub struct LeaderElector {
    api: Api<Lease>,
    settings: LeaseSettings,
}

/// The advice for a lease that cannot be created because its namespace is missing (the API
/// answers 404 to a create only for that).
pub fn missing_namespace_hint(e: &Error, settings: &LeaseSettings) -> Option<String> {
    match e {
        Error::Kube(kube::Error::Api(s)) if s.code == 404 => Some(format!(
            "the leader lease's namespace {ns:?} does not exist: create it (`kubectl create namespace {ns}`) \
             or point --lease-namespace / POD_NAMESPACE at an existing one; retrying",
            ns = settings.namespace
        )),
        _ => None,
    }
}

fn seconds(d: Duration) -> i32 {
    i32::try_from(d.as_secs()).unwrap_or(i32::MAX)
}

impl LeaderElector {
    pub fn new(client: Client, settings: LeaseSettings) -> LeaderElector {
        LeaderElector {
            api: Api::namespaced(client, &settings.namespace),
            settings,
        }
    }

    pub fn settings(&self) -> &LeaseSettings {
        &self.settings
    }

    fn expired(spec: &LeaseSpec, now: Timestamp) -> bool {
        let Some(renewed) = spec.renew_time.as_ref().or(spec.acquire_time.as_ref()) else {
            return true;
        };
        let duration = SignedDuration::from_secs(i64::from(spec.lease_duration_seconds.unwrap_or(0)));
        renewed.0.saturating_add(duration).map_or(true, |until| until < now)
    }

    /// One attempt at `now`: create the Lease, renew it, or take it over once expired.
    /// A lost race (HTTP 409) is reported as `Follower`.
    pub async fn try_acquire_or_renew(&self, now: Timestamp) -> Result<LeaseState, Error> {
        let me = &self.settings.identity;
        let existing = self.api.get_opt(&self.settings.name).await?;
        let Some(mut lease) = existing else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.settings.name.clone()),
                    namespace: Some(self.settings.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(me.clone()),
                    lease_duration_seconds: Some(seconds(self.settings.lease_duration)),
                    acquire_time: Some(MicroTime(now)),
                    renew_time: Some(MicroTime(now)),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(LeaseState::Leader),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(LeaseState::Follower { holder: None }),
                Err(e) => Err(e.into()),
            };
        };
        let mut spec = lease.spec.clone().unwrap_or_default();
        let held_by_me = spec.holder_identity.as_deref() == Some(me.as_str());
        if !held_by_me && !Self::expired(&spec, now) && spec.holder_identity.is_some() {
            return Ok(LeaseState::Follower {
                holder: spec.holder_identity,
            });
        }
        if !held_by_me {
            spec.holder_identity = Some(me.clone());
            spec.acquire_time = Some(MicroTime(now));
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        spec.renew_time = Some(MicroTime(now));
        spec.lease_duration_seconds = Some(seconds(self.settings.lease_duration));
        lease.spec = Some(spec);
        // `replace` carries the resourceVersion we read: a concurrent writer makes it fail.
        match self
            .api
            .replace(&self.settings.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(LeaseState::Leader),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(LeaseState::Follower { holder: None }),
            Err(e) => Err(e.into()),
        }
    }

    /// Gives the lease up (so a standby takes over at once), if this replica holds it.
    pub async fn release(&self) -> Result<(), Error> {
        let Some(mut lease) = self.api.get_opt(&self.settings.name).await? else {
            return Ok(());
        };
        let mut spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.settings.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.renew_time = None;
        lease.spec = Some(spec);
        self.api
            .replace(&self.settings.name, &PostParams::default(), &lease)
            .await?;
        Ok(())
    }

    /// Says why the lease could not be taken; a namespace that does not exist yet is named
    /// with what to do about it (the operator keeps retrying: it may be created later).
    fn warn_acquire_failed(&self, e: &Error) {
        if let Some(hint) = missing_namespace_hint(e, &self.settings) {
            warn!(namespace = %self.settings.namespace, retry_in = ?self.settings.retry_period, "{hint}");
        } else {
            warn!(error = %e, "cannot acquire the leader lease");
        }
    }

    /// Waits until this replica holds the lease (or `shutdown` fires: returns false).
    pub async fn acquire(&self, shutdown: &tokio::sync::watch::Receiver<bool>) -> bool {
        let mut shutdown = shutdown.clone();
        loop {
            match self.try_acquire_or_renew(Timestamp::now()).await {
                Ok(LeaseState::Leader) => return true,
                Ok(LeaseState::Follower { holder }) => {
                    info!(
                        holder = holder.as_deref().unwrap_or("?"),
                        "waiting for the leader lease"
                    );
                }
                Err(e) => self.warn_acquire_failed(&e),
            }
            tokio::select! {
                _ = tokio::time::sleep(self.settings.retry_period) => {}
                _ = shutdown.changed() => return false,
            }
            if *shutdown.borrow() {
                return false;
            }
        }
    }

    /// Renews the lease until it is lost (returns an error) or `shutdown` fires (returns Ok).
    pub async fn keep_renewing(
        &self,
        metrics: &Metrics,
        shutdown: &tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), Error> {
        let mut shutdown = shutdown.clone();
        let mut last_renewed = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.settings.retry_period) => {}
                _ = shutdown.changed() => return Ok(()),
            }
            match self.try_acquire_or_renew(Timestamp::now()).await {
                Ok(LeaseState::Leader) => last_renewed = tokio::time::Instant::now(),
                Ok(LeaseState::Follower { holder }) => {
                    metrics.leader.set(0);
                    return Err(Error::Lease(format!(
                        "lease taken over by {}",
                        holder.as_deref().unwrap_or("another replica")
                    )));
                }
                Err(e) => warn!(error = %e, "cannot renew the leader lease"),
            }
            if last_renewed.elapsed() > self.settings.renew_deadline {
                metrics.leader.set(0);
                return Err(Error::Lease(
                    "could not renew the lease within the renew deadline".to_string(),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_uses_renew_time_and_duration() {
        let now: Timestamp = "2026-01-01T00:00:30Z".parse().expect("ts");
        let spec = |renew: &str| LeaseSpec {
            holder_identity: Some("a".to_string()),
            lease_duration_seconds: Some(15),
            renew_time: Some(MicroTime(renew.parse().expect("ts"))),
            ..LeaseSpec::default()
        };
        assert!(!LeaderElector::expired(&spec("2026-01-01T00:00:20Z"), now));
        assert!(LeaderElector::expired(&spec("2026-01-01T00:00:10Z"), now));
        assert!(LeaderElector::expired(&LeaseSpec::default(), now));
    }
}
