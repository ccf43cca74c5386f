//! Drain, peer removal and re-balance driven by the operator's planner and its real HTTP
//! `ClusterApi` against real node processes of this project on loopback ports.
//!
//!   cargo test --release -p operator --test real_nodes
//! (node processes from support/nodes.rs: `QDRANT_BIN` overrides the binary).

#[path = "support/nodes.rs"]
mod nodes;

use std::time::{Duration, Instant};

use nodes::{rest, wait_for_cluster, Node};
use operator::cluster_api::{ClusterApi, Connection, HttpClusterApi};
use operator::planner::{plan, ClusterAction, PlanInput, PodView, Step, StsView};
use operator::snapshot::{observe_cluster, Topology};
use serde_json::{json, Value};

/// Ordinal k = the k-th node; peers are recognised by their p2p port.
struct Loopback {
    ports: Vec<(u16, u16)>,
}

impl Topology for Loopback {
    fn rest_endpoint(&self, ordinal: u32) -> String {
        format!("http://127.0.0.1:{}", self.ports[ordinal as usize].0)
    }
    fn ordinal_of(&self, uri: &str) -> Option<u32> {
        let port: u16 = uri.trim_end_matches('/').rsplit(':').next()?.parse().ok()?;
        self.ports.iter().position(|(_, p2p)| *p2p == port).map(|i| i as u32)
    }
}

async fn seed_collection(node: &Node, shards: u32, points: u64) {
    rest(
        reqwest::Method::PUT,
        format!("{}/collections/c", node.url()),
        json!({"vectors": {"size": 4, "distance": "Dot"}, "shard_number": shards, "replication_factor": 1}),
    )
    .await;
    let batch: Vec<Value> = (0..points)
        .map(|i| json!({"id": i, "vector": [i as f32, 1.0, 0.5, 0.25]}))
        .collect();
    rest(
        reqwest::Method::PUT,
        format!("{}/collections/c/points?wait=true", node.url()),
        json!({"points": batch}),
    )
    .await;
}

async fn count(node: &Node) -> u64 {
    let v = rest(
        reqwest::Method::POST,
        format!("{}/collections/c/points/count", node.url()),
        json!({"exact": true}),
    )
    .await;
    v["result"]["count"].as_u64().expect("count")
}

/// Runs the planner against the live nodes until Idle, executing cluster actions over HTTP and
/// stopping the node of a shrunk ordinal.
async fn converge(api: &HttpClusterApi, nodes: &mut [Node], size: i32, mut replicas: i32) -> Vec<Step> {
    let topology = Loopback {
        ports: nodes.iter().map(|n| (n.http, n.p2p)).collect(),
    };
    let mut steps = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let pods: Vec<PodView> = (0..replicas as u32)
            .map(|k| PodView {
                ordinal: k,
                ready: true,
                updated: true,
                terminating: false,
            })
            .collect();
        let ready: Vec<u32> = pods.iter().map(|p| p.ordinal).collect();
        let snapshot = observe_cluster(api, &topology, &ready).await.map_err(|e| e.to_string());
        let pvcs: Vec<u32> = (0..replicas as u32).collect();
        let p = plan(&PlanInput {
            size,
            suspend: false,
            rebalance: true,
            sts: Some(StsView {
                replicas,
                settled: true,
            }),
            pods: &pods,
            pvcs: &pvcs,
            cluster: snapshot.as_ref().map_err(Clone::clone),
            known_members: replicas as usize,
            initialized: true,
        });
        match &p.step {
            Step::Idle => return steps,
            Step::Blocked { reason, message } => panic!("blocked: {reason}: {message}"),
            Step::Cluster { action, coordinator } => {
                let node = topology.rest_endpoint(*coordinator);
                match action {
                    ClusterAction::Shard {
                        collection, operation, ..
                    } => api
                        .update_collection_cluster(&node, collection, operation)
                        .await
                        .expect("shard operation"),
                    ClusterAction::RemovePeer { peer, .. } => api.remove_peer(&node, *peer).await.expect("remove peer"),
                }
            }
            Step::Shrink { to, .. } => nodes[*to as usize].stop(),
            _ => {}
        }
        replicas = p.replicas;
        steps.push(p.step);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    panic!("no convergence; steps: {steps:#?}");
}

#[tokio::test]
async fn drain_and_remove_the_highest_peer_without_losing_points() {
    let api = HttpClusterApi::new(&Connection::default()).expect("client");
    let first = Node::start(None);
    let second = Node::start(Some(first.p2p));
    let third = Node::start(Some(first.p2p));
    let mut nodes = vec![first, second, third];
    wait_for_cluster(&nodes.iter().collect::<Vec<_>>(), 3).await;
    seed_collection(&nodes[0], 6, 300).await;
    assert_eq!(count(&nodes[0]).await, 300);

    let steps = converge(&api, &mut nodes, 2, 3).await;
    assert!(steps.iter().any(|s| matches!(
        s,
        Step::Cluster {
            action: ClusterAction::RemovePeer { .. },
            ..
        }
    )));
    assert!(steps.iter().any(|s| matches!(s, Step::Shrink { from: 3, to: 2 })));
    let info = api.cluster_info(&nodes[0].url()).await.expect("cluster");
    assert_eq!(info.peers.len(), 2);
    assert_eq!(count(&nodes[0]).await, 300, "no point lost");
    assert_eq!(count(&nodes[1]).await, 300);
}

#[tokio::test]
async fn rebalance_onto_a_new_peer() {
    let api = HttpClusterApi::new(&Connection::default()).expect("client");
    let first = Node::start(None);
    let second = Node::start(Some(first.p2p));
    wait_for_cluster(&[&first, &second], 2).await;
    seed_collection(&first, 6, 200).await;
    let third = Node::start(Some(first.p2p));
    let mut nodes = vec![first, second, third];
    wait_for_cluster(&nodes.iter().collect::<Vec<_>>(), 3).await;
    converge(&api, &mut nodes, 3, 3).await;
    let c = api.collection_cluster(&nodes[2].url(), "c").await.expect("collection");
    assert_eq!(c.local_shards.len(), 2, "the new peer holds its share: {c:?}");
    assert_eq!(count(&nodes[0]).await, 200);
}

#[tokio::test]
async fn peer_removal_is_refused_while_it_holds_shards() {
    let api = HttpClusterApi::new(&Connection::default()).expect("client");
    let first = Node::start(None);
    let second = Node::start(Some(first.p2p));
    wait_for_cluster(&[&first, &second], 2).await;
    seed_collection(&first, 4, 50).await;
    let info = api.cluster_info(&second.url()).await.expect("cluster");
    let second_id = info.peer_id.expect("peer id");
    let err = api
        .remove_peer(&first.url(), second_id)
        .await
        .expect_err("a peer with shards must not be removed without force");
    assert!(err.to_string().contains("shards"), "{err}");
}
