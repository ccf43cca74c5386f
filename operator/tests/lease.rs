//! Leader election against the mocked API server.

mod support;

use jiff::Timestamp;
use operator::lease::{LeaderElector, LeaseSettings, LeaseState};
use serde_json::json;
use support::ApiServer;

const LEASES: &str = "apis/coordination.k8s.io/v1/namespaces/ops/leases";

fn at(s: &str) -> Timestamp {
    s.parse().expect("timestamp")
}

fn elector(client: kube::Client, identity: &str) -> LeaderElector {
    LeaderElector::new(client, LeaseSettings::new("qdrant-operator", "ops", identity))
}

#[tokio::test]
async fn first_replica_creates_the_lease_and_renews_it() {
    let (client, api) = ApiServer::start();
    let a = elector(client, "a");
    assert_eq!(
        a.try_acquire_or_renew(at("2026-01-01T00:00:00Z"))
            .await
            .expect("acquire"),
        LeaseState::Leader
    );
    let lease = api.get(LEASES, "qdrant-operator").expect("lease created");
    assert_eq!(lease["spec"]["holderIdentity"], json!("a"));
    assert_eq!(lease["spec"]["leaseDurationSeconds"], json!(15));
    assert_eq!(
        a.try_acquire_or_renew(at("2026-01-01T00:00:05Z")).await.expect("renew"),
        LeaseState::Leader
    );
    let lease = api.get(LEASES, "qdrant-operator").expect("lease");
    assert!(lease["spec"]["renewTime"]
        .as_str()
        .expect("renewTime")
        .starts_with("2026-01-01T00:00:05"));
    assert_eq!(lease["spec"]["leaseTransitions"], json!(0));
}

#[tokio::test]
async fn a_fresh_lease_of_another_replica_is_respected_and_an_expired_one_taken_over() {
    let (client, api) = ApiServer::start();
    let a = elector(client.clone(), "a");
    let b = elector(client, "b");
    a.try_acquire_or_renew(at("2026-01-01T00:00:00Z"))
        .await
        .expect("a leads");
    assert_eq!(
        b.try_acquire_or_renew(at("2026-01-01T00:00:10Z"))
            .await
            .expect("b tries"),
        LeaseState::Follower {
            holder: Some("a".to_string())
        }
    );
    // a stopped renewing; 16 s later the lease is expired.
    assert_eq!(
        b.try_acquire_or_renew(at("2026-01-01T00:00:16Z"))
            .await
            .expect("b takes over"),
        LeaseState::Leader
    );
    let lease = api.get(LEASES, "qdrant-operator").expect("lease");
    assert_eq!(lease["spec"]["holderIdentity"], json!("b"));
    assert_eq!(lease["spec"]["leaseTransitions"], json!(1));
    // a comes back and sees b's fresh lease.
    assert!(matches!(
        a.try_acquire_or_renew(at("2026-01-01T00:00:17Z")).await.expect("a"),
        LeaseState::Follower { .. }
    ));
}

#[tokio::test]
async fn a_concurrent_write_loses_the_race() {
    let (client, api) = ApiServer::start();
    let a = elector(client.clone(), "a");
    let b = elector(client, "b");
    a.try_acquire_or_renew(at("2026-01-01T00:00:00Z"))
        .await
        .expect("a leads");
    // The lease expired and both want it; another writer lands between b's read and write.
    api.store().conflicting_puts = 1;
    assert_eq!(
        b.try_acquire_or_renew(at("2026-01-01T00:01:00Z"))
            .await
            .expect("conflict is not an error"),
        LeaseState::Follower { holder: None }
    );
    assert_eq!(
        api.get(LEASES, "qdrant-operator").expect("lease")["spec"]["holderIdentity"],
        json!("a")
    );
    // The next attempt (no conflict) succeeds.
    assert_eq!(
        b.try_acquire_or_renew(at("2026-01-01T00:01:02Z")).await.expect("b"),
        LeaseState::Leader
    );
}

#[tokio::test]
async fn release_hands_the_lease_over_at_once() {
    let (client, _api) = ApiServer::start();
    let a = elector(client.clone(), "a");
    let b = elector(client, "b");
    a.try_acquire_or_renew(at("2026-01-01T00:00:00Z"))
        .await
        .expect("a leads");
    a.release().await.expect("release");
    assert_eq!(
        b.try_acquire_or_renew(at("2026-01-01T00:00:01Z")).await.expect("b"),
        LeaseState::Leader
    );
    // Releasing a lease held by someone else changes nothing.
    a.release().await.expect("noop");
    assert!(matches!(
        a.try_acquire_or_renew(at("2026-01-01T00:00:02Z")).await.expect("a"),
        LeaseState::Follower { .. }
    ));
}

#[tokio::test]
async fn a_missing_lease_namespace_is_named_and_retried_until_it_exists() {
    let (client, api) = ApiServer::start();
    api.store().missing_namespaces.push("ops".to_string());
    let settings = LeaseSettings {
        retry_period: std::time::Duration::from_millis(20),
        ..LeaseSettings::new("qdrant-operator", "ops", "a")
    };
    let a = LeaderElector::new(client, settings);
    let err = a
        .try_acquire_or_renew(at("2026-01-01T00:00:00Z"))
        .await
        .expect_err("no namespace, no lease");
    let hint = operator::lease::missing_namespace_hint(&err, a.settings()).expect("a 404 is a missing namespace");
    assert!(
        hint.contains("\"ops\" does not exist") && hint.contains("kubectl create namespace ops"),
        "{hint}"
    );
    // `acquire` does not give up: it takes the lease once the namespace appears.
    let (_stop, stop_rx) = tokio::sync::watch::channel(false);
    let waiting = tokio::spawn(async move { a.acquire(&stop_rx).await });
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(!waiting.is_finished(), "still retrying while the namespace is missing");
    api.store().missing_namespaces.clear();
    let acquired = tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
        .await
        .expect("acquired within 5 s")
        .expect("task");
    assert!(acquired);
    assert_eq!(
        api.get(LEASES, "qdrant-operator").expect("lease")["spec"]["holderIdentity"],
        json!("a")
    );
}
