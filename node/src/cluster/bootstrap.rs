//! Cluster start-up: the peer id, the Raft instance with its storage, the peer server, and the
//! three ways in: first peer (initialise a one-voter cluster), joiner (ask a member), or restart
//! (Raft state on disk: resume, ignoring `--uri`/`--bootstrap`).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{InitializeError, RaftError};
use openraft::SnapshotPolicy;
use rand::Rng;
use tokio::time::Instant;

use super::consensus::{Consensus, Timing};
use super::leader::{spawn_leader_duties, spawn_metrics_watch, validate_peer_uri};
use super::log_store::LogStore;
use super::network::{NetworkFactory, PeerClients};
use super::raft_db::{blocking, RaftDb};
use super::state::{same_uri, ClusterOp, PeerId};
use super::state_machine::StateMachineStore;
use super::types::{PeerNode, Raft};
use super::wire::from_peer_error;
use crate::error::{Error, Result};
use crate::peer_proto::JoinRequest;
use crate::settings::Settings;

/// Raft log compaction: a snapshot every this many entries, keeping some entries after it so
/// slightly lagging peers still catch up from the log.
#[derive(Debug, Clone, Copy)]
pub struct Compaction {
    pub snapshot_every: u64,
    pub keep_entries: u64,
}

impl Default for Compaction {
    fn default() -> Self {
        // Qdrant compacts every 128 applied entries.
        Compaction {
            snapshot_every: 128,
            keep_entries: 256,
        }
    }
}

/// Peer ids are random in 1..2^53 (they survive a JSON round trip through any client).
fn random_peer_id() -> PeerId {
    rand::thread_rng().gen_range(1..(1u64 << 53))
}

fn choose_peer_id(db: &RaftDb, configured: Option<PeerId>) -> Result<PeerId> {
    if let Some(stored) = db.peer_id()? {
        if let Some(c) = configured.filter(|c| *c != stored) {
            tracing::warn!(
                configured = c,
                stored,
                "cluster.peer_id differs from the id in the raft state on disk; keeping the stored id"
            );
        }
        return Ok(stored);
    }
    let id = configured.unwrap_or_else(random_peer_id);
    db.set_peer_id(id)?;
    Ok(id)
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

fn raft_config(t: &Timing, compaction: Compaction) -> Result<openraft::Config> {
    let config = openraft::Config {
        cluster_name: "qdrant".into(),
        heartbeat_interval: ms(t.heartbeat),
        election_timeout_min: ms(t.election_min),
        election_timeout_max: ms(t.election_max),
        install_snapshot_timeout: ms(t.rpc),
        snapshot_policy: SnapshotPolicy::LogsSinceLast(compaction.snapshot_every),
        max_in_snapshot_log_to_keep: compaction.keep_entries,
        snapshot_max_chunk_size: 1 << 20,
        ..Default::default()
    };
    config
        .validate()
        .map_err(|e| Error::bad_input(format!("invalid consensus settings: {e}")))
}

/// This peer's URI when the first peer is started without `--uri` (`https://` with peer TLS).
fn default_uri(host: &str, port: u16, tls: bool) -> String {
    let host = match host {
        "0.0.0.0" | "::" | "[::]" | "" => "127.0.0.1",
        h => h,
    };
    let scheme = if tls { "https" } else { "http" };
    if host.contains(':') && !host.starts_with('[') {
        format!("{scheme}://[{host}]:{port}")
    } else {
        format!("{scheme}://{host}:{port}")
    }
}

pub(super) async fn start(
    settings: &Settings,
    uri: Option<String>,
    bootstrap: Option<String>,
    storage_path: &Path,
    extra: tonic::service::Routes,
) -> Result<Arc<Consensus>> {
    start_with(settings, uri, bootstrap, storage_path, extra, Compaction::default()).await
}

pub async fn start_with(
    settings: &Settings,
    uri: Option<String>,
    bootstrap: Option<String>,
    storage_path: &Path,
    extra: tonic::service::Routes,
    compaction: Compaction,
) -> Result<Arc<Consensus>> {
    if let Some(u) = &uri {
        validate_peer_uri(u)?;
    }
    if let Some(b) = &bootstrap {
        validate_peer_uri(b)?;
    }
    let timing = Timing::from_settings(settings);
    let raft_dir = storage_path.join("raft");
    let db = blocking(move || RaftDb::open(&raft_dir)).await?;
    let id = choose_peer_id(&db, settings.cluster.peer_id)?;
    tracing::info!(peer_id = id, "cluster mode: consensus starting");

    let log_store = LogStore::new(db.clone());
    let state_machine = StateMachineStore::open(db)?;
    let state_rx = state_machine.state_sender().subscribe();
    let peer_tls = |e: anyhow::Error| Error::bad_input(format!("peer TLS: {e:#}"));
    let client_tls = crate::api::tls::PeerClientTls::load(settings).map_err(peer_tls)?;
    let server_tls = crate::api::tls::peer_server_config(settings).map_err(peer_tls)?;
    let clients = Arc::new(PeerClients::new(timing.connect, timing.rpc).with_tls(client_tls));
    let network = NetworkFactory::new(clients.clone(), timing.tick * 2);
    let config = raft_config(&timing, compaction)?;
    let raft = Raft::new(id, Arc::new(config), network, log_store, state_machine)
        .await
        .map_err(|e| Error::internal(format!("cannot start consensus: {e}")))?;

    let p2p_port = settings.cluster.p2p.port;
    let consensus = Arc::new(Consensus::new(id, raft, clients, state_rx, timing, p2p_port));
    let host = settings.service.host.clone();
    let listener = tokio::net::TcpListener::bind((host.as_str(), p2p_port))
        .await
        .map_err(|e| Error::internal(format!("cannot listen for peers on {host}:{p2p_port}: {e}")))?;
    tracing::info!(addr = %format!("{host}:{p2p_port}"), "peer API listening");
    consensus.add_task(crate::api::peer::serve(listener, server_tls, consensus.clone(), extra));
    consensus.add_task(spawn_leader_duties(&consensus));
    consensus.add_task(spawn_metrics_watch(&consensus));

    let own_uri = uri
        .clone()
        .unwrap_or_else(|| default_uri(&host, p2p_port, settings.cluster.p2p.enable_tls));
    if let Err(e) = enter_cluster(&consensus, uri, own_uri, bootstrap).await {
        consensus.shutdown().await;
        return Err(e);
    }
    Ok(consensus)
}

async fn enter_cluster(
    consensus: &Arc<Consensus>,
    uri: Option<String>,
    own_uri: String,
    bootstrap: Option<String>,
) -> Result<()> {
    let initialized = consensus
        .raft
        .is_initialized()
        .await
        .map_err(|e| Error::internal(format!("consensus stopped: {e}")))?;
    if initialized {
        let id = consensus.id;
        if !consensus.membership_nodes().contains_key(&id) && !consensus.state().peers.contains_key(&id) {
            return Err(Error::BadRequest(format!(
                "this peer ({id}) was removed from the cluster and cannot rejoin it with its old data; \
                 delete its storage directory to join as a new peer"
            )));
        }
        if uri.is_some() || bootstrap.is_some() {
            tracing::info!(
                peer_id = consensus.id,
                "raft state found on disk: resuming membership; --uri/--bootstrap are ignored"
            );
        }
        return Ok(());
    }
    match bootstrap {
        Some(b) if !uri.as_deref().is_some_and(|u| same_uri(u, &b)) => join(consensus, &b, uri).await,
        _ => {
            if uri.is_none() {
                tracing::warn!(uri = %own_uri, "no --uri given for the first peer; other peers must reach it there");
            }
            init_first_peer(consensus, own_uri).await
        }
    }
}

async fn init_first_peer(consensus: &Arc<Consensus>, uri: String) -> Result<()> {
    let id = consensus.id;
    let timeout = consensus.timing.bootstrap;
    tracing::info!(peer_id = id, %uri, "initialising a new cluster as its first peer");
    let members = BTreeMap::from([(id, PeerNode { uri: uri.clone() })]);
    match consensus.raft.initialize(members).await {
        Ok(()) => {}
        Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {}
        Err(e) => return Err(Error::internal(format!("cannot initialise the cluster: {e}"))),
    }
    consensus
        .raft
        .wait(Some(timeout))
        .current_leader(id, "first peer elects itself")
        .await
        .map_err(|e| Error::Timeout(format!("the first peer did not become leader: {e}")))?;
    consensus
        .propose(ClusterOp::AddPeer { peer_id: id, uri }, timeout)
        .await?;
    tracing::info!(peer_id = id, "cluster initialised; this peer is its leader");
    Ok(())
}

async fn join(consensus: &Arc<Consensus>, bootstrap: &str, uri: Option<String>) -> Result<()> {
    let id = consensus.id;
    let timeout = consensus.timing.bootstrap;
    let deadline = Instant::now() + timeout;
    let request = JoinRequest {
        peer_id: id,
        uri: uri.clone().unwrap_or_default(),
        p2p_port: u32::from(consensus.p2p_port),
    };
    tracing::info!(peer_id = id, %bootstrap, uri = ?uri, "joining the cluster");
    let mut attempt: u32 = 0;
    let mut last_problem;
    loop {
        attempt += 1;
        let per_try = deadline
            .saturating_duration_since(Instant::now())
            .min(consensus.timing.rpc);
        let req = request.clone();
        match consensus
            .clients
            .call(bootstrap, None, per_try, |mut c| async move { c.join(req).await })
            .await
        {
            Ok(reply) => match reply.error {
                None => {
                    tracing::info!(peer_id = id, uri = %reply.uri, leader = reply.leader_id, "admitted as a learner");
                    break;
                }
                Some(e) => match from_peer_error(e) {
                    Error::Unavailable(m) | Error::Timeout(m) => last_problem = m,
                    refused => {
                        tracing::error!(%bootstrap, error = %refused, "the cluster refused this peer");
                        return Err(refused);
                    }
                },
            },
            Err(e) => last_problem = e.to_string(),
        }
        if attempt == 1 || attempt % 10 == 0 {
            tracing::warn!(%bootstrap, problem = %last_problem, "cannot join the cluster yet; retrying");
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(Error::Timeout(format!(
                "could not join the cluster through {bootstrap} within {}s (cluster.consensus.bootstrap_timeout_sec): \
                 {last_problem}",
                timeout.as_secs()
            )));
        }
        tokio::time::sleep(remaining.min(Duration::from_millis(200))).await;
    }

    // Admitted: wait for the log (with our own registration) to reach us.
    let mut rx = consensus.subscribe();
    let registered = tokio::time::timeout_at(deadline, rx.wait_for(|s| s.peers.contains_key(&id))).await;
    match registered {
        Ok(Ok(_)) => {
            tracing::info!(peer_id = id, "joined the cluster");
            Ok(())
        }
        _ => Err(Error::Timeout(format!(
            "admitted to the cluster, but the leader's log did not reach this peer within {}s",
            timeout.as_secs()
        ))),
    }
}
