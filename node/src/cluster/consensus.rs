//! The `Consensus` handle: owns the openraft instance, its storage and the peer server, and
//! offers what the rest of the node needs: propose an operation from any peer, read and watch the
//! applied `ClusterState`, report status/readiness/metrics, remove peers.
//!
//! Bootstrap lives in `bootstrap.rs`, the leader's duties (join, removal, promotion) in `leader.rs`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use openraft::error::{ClientWriteError, RaftError};
use openraft::ServerState;
use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::network::{PeerClients, SendFailure};
use super::state::{AppliedState, ClusterOp, ClusterState, PeerId};
use super::types::{ApplyOutcome, PeerNode, Proposal, Raft, RaftMetrics};
use super::wire::from_peer_error;
use crate::error::{Error, Result};
use crate::peer_proto::{GetCommitRequest, ProposeRequest, RemovePeerRequest};
use crate::settings::Settings;

/// Durations derived from `cluster.*` settings.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub tick: Duration,
    pub heartbeat: Duration,
    pub election_min: Duration,
    pub election_max: Duration,
    pub rpc: Duration,
    pub connect: Duration,
    pub bootstrap: Duration,
}

impl Timing {
    pub fn from_settings(settings: &Settings) -> Timing {
        let tick = Duration::from_millis(settings.cluster.consensus.tick_period_ms.max(10));
        Timing {
            tick,
            // A heartbeat also bounds one append RPC (it includes the follower's fsync): two ticks.
            heartbeat: tick * 2,
            election_min: tick * 10,
            election_max: tick * 20,
            rpc: Duration::from_millis(settings.cluster.grpc_timeout_ms.max(100)),
            connect: Duration::from_millis(settings.cluster.connection_timeout_ms.max(100)),
            bootstrap: Duration::from_secs(settings.cluster.consensus.bootstrap_timeout_sec.max(1)),
        }
    }

    /// A peer not heard from for this long counts as down.
    pub fn liveness_window(&self) -> Duration {
        (self.election_max * 2).max(Duration::from_secs(2))
    }
}

/// Values for the `cluster_*` metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsensusMetrics {
    pub term: u64,
    pub commit: u64,
    pub pending_operations: u64,
    pub voter: bool,
    pub peers_total: u64,
}

pub struct Consensus {
    pub(super) id: PeerId,
    pub(super) raft: Raft,
    pub(super) clients: Arc<PeerClients>,
    pub(super) state_rx: watch::Receiver<Arc<AppliedState>>,
    pub(super) timing: Timing,
    pub(super) p2p_port: u16,
    /// Serialises membership changes on the leader (join, removal, promotion).
    pub(super) membership_lock: tokio::sync::Mutex<()>,
    ready: AtomicBool,
    ready_target: Mutex<Option<u64>>,
    last_update: Mutex<DateTime<Utc>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Consensus {
    /// Starts cluster mode (see `bootstrap.rs`): opens the raft storage under
    /// `<storage_path>/raft`, serves the peer gRPC API on `service.host:cluster.p2p.port`, and
    /// initialises a new cluster (first peer), joins one (`bootstrap`), or resumes (raft state on
    /// disk). Returns once this peer is a member; fails after `bootstrap_timeout_sec` otherwise.
    pub async fn start(
        settings: &Settings,
        uri: Option<String>,
        bootstrap: Option<String>,
        storage_path: &Path,
    ) -> Result<Arc<Consensus>> {
        Self::start_with_services(
            settings,
            uri,
            bootstrap,
            storage_path,
            tonic::service::Routes::default(),
        )
        .await
    }

    /// Like [`Consensus::start`], also serving `extra` gRPC services on the p2p port (for the
    /// data-plane services of the collection layer).
    pub async fn start_with_services(
        settings: &Settings,
        uri: Option<String>,
        bootstrap: Option<String>,
        storage_path: &Path,
        extra: tonic::service::Routes,
    ) -> Result<Arc<Consensus>> {
        super::bootstrap::start(settings, uri, bootstrap, storage_path, extra).await
    }

    pub(super) fn new(
        id: PeerId,
        raft: Raft,
        clients: Arc<PeerClients>,
        state_rx: watch::Receiver<Arc<AppliedState>>,
        timing: Timing,
        p2p_port: u16,
    ) -> Consensus {
        Consensus {
            id,
            raft,
            clients,
            state_rx,
            timing,
            p2p_port,
            membership_lock: tokio::sync::Mutex::new(()),
            ready: AtomicBool::new(false),
            ready_target: Mutex::new(None),
            last_update: Mutex::new(Utc::now()),
            tasks: Mutex::new(Vec::new()),
        }
    }

    pub(super) fn add_task(&self, task: JoinHandle<()>) {
        self.tasks.lock().push(task);
    }

    pub fn peer_id(&self) -> PeerId {
        self.id
    }

    /// The connections to other peers (shared with the data plane).
    pub fn clients(&self) -> Arc<PeerClients> {
        self.clients.clone()
    }

    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    pub fn timing(&self) -> Timing {
        self.timing
    }

    /// The applied cluster state.
    pub fn state(&self) -> ClusterState {
        self.state_rx.borrow().state.clone()
    }

    /// The collection `alias` names in the applied state, if it is an alias.
    pub fn resolve_alias(&self, alias: &str) -> Option<String> {
        self.state_rx.borrow().state.aliases.resolve(alias).map(str::to_string)
    }

    /// Notified after every applied batch of entries (and on snapshot install).
    pub fn subscribe(&self) -> watch::Receiver<Arc<AppliedState>> {
        self.state_rx.clone()
    }

    pub(super) fn metrics_now(&self) -> RaftMetrics {
        self.raft.metrics().borrow().clone()
    }

    pub fn leader_id(&self) -> Option<PeerId> {
        self.raft.metrics().borrow().current_leader
    }

    pub fn is_leader(&self) -> bool {
        self.leader_id() == Some(self.id)
    }

    /// The current leader and its URI, if known.
    pub(super) fn leader(&self) -> Option<(PeerId, String)> {
        let m = self.raft.metrics();
        let m = m.borrow();
        let leader = m.current_leader?;
        let uri = m
            .membership_config
            .membership()
            .get_node(&leader)
            .map(|n| n.uri.clone())?;
        Some((leader, uri))
    }

    pub fn applied_index(&self) -> u64 {
        self.raft.metrics().borrow().last_applied.map(|l| l.index).unwrap_or(0)
    }

    pub(super) fn touch(&self) {
        *self.last_update.lock() = Utc::now();
    }

    /// Proposes `op` from any peer: commits it through the leader (forwarding if needed) and
    /// returns its log index once it is applied on this peer. The operation's own refusal (e.g. a
    /// duplicate collection) is returned as is; without a leader or quorum it fails after `timeout`.
    pub async fn propose(&self, op: ClusterOp, timeout: Duration) -> Result<u64> {
        let deadline = Instant::now() + timeout;
        let proposal = Proposal::new(op);
        tracing::debug!(%proposal, "proposing");
        let index = self.commit(proposal, deadline, timeout).await?;
        self.wait_applied(index, deadline, timeout).await?;
        Ok(index)
    }

    /// Commits a proposal on the leader; returns its log index.
    async fn commit(&self, proposal: Proposal, deadline: Instant, timeout: Duration) -> Result<u64> {
        let mut last_problem = String::from("no leader is known");
        loop {
            if Instant::now() >= deadline {
                return Err(not_committed(timeout, &last_problem));
            }
            match self.leader() {
                Some((leader, _)) if leader == self.id => match self.commit_local(proposal.clone(), deadline).await {
                    Ok(index) => return Ok(index),
                    Err(LocalCommitError::NotLeader) => last_problem = "leadership changed".into(),
                    Err(LocalCommitError::NoQuorum) => {
                        return Err(not_committed(
                            timeout,
                            "this peer is the leader but a majority of voters did not acknowledge the entry",
                        ))
                    }
                    Err(LocalCommitError::Failed(e)) => return Err(e),
                },
                Some((leader, uri)) => {
                    let remaining = deadline.saturating_duration_since(Instant::now());
                    let request = ProposeRequest {
                        proposal: super::network::encode(&proposal)?,
                        timeout_ms: remaining.as_millis() as u64,
                    };
                    let reply = self
                        .clients
                        .call(&uri, Some(leader), remaining, |mut c| async move {
                            c.propose(request).await
                        })
                        .await;
                    match reply {
                        Ok(reply) => match reply.error {
                            None => return Ok(reply.index),
                            Some(e) => match from_peer_error(e) {
                                // The peer lost leadership meanwhile: ask again.
                                Error::Unavailable(msg) => last_problem = msg,
                                Error::Timeout(msg) => return Err(not_committed(timeout, &msg)),
                                other => return Err(other),
                            },
                        },
                        Err(e) => last_problem = format!("leader {leader}: {e}"),
                    }
                }
                None => last_problem = "no leader is elected (is a majority of the peers up?)".into(),
            }
            self.pause(deadline).await;
        }
    }

    /// Appends a proposal as the leader and waits for it to be committed and applied here.
    pub(super) async fn commit_local(&self, proposal: Proposal, deadline: Instant) -> Result<u64, LocalCommitError> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(remaining, self.raft.client_write(proposal)).await {
            Err(_) => Err(LocalCommitError::NoQuorum),
            Ok(Ok(response)) => {
                let ApplyOutcome { error } = response.data;
                match error {
                    None => Ok(response.log_id.index),
                    Some(e) => Err(LocalCommitError::Failed(Error::from(e))),
                }
            }
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_)))) => Err(LocalCommitError::NotLeader),
            Ok(Err(e)) => Err(LocalCommitError::Failed(Error::internal(format!(
                "consensus failure: {e}"
            )))),
        }
    }

    /// Waits until this peer has applied the entry at `index`.
    pub(super) async fn wait_applied(&self, index: u64, deadline: Instant, timeout: Duration) -> Result<()> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        self.raft
            .wait(Some(remaining.max(Duration::from_millis(1))))
            .applied_index_at_least(Some(index), "cluster operation applied")
            .await
            .map(|_| ())
            .map_err(|e| match e {
                openraft::metrics::WaitError::Timeout(..) => Error::Timeout(format!(
                    "the operation was committed (log index {index}) but this peer did not apply it within {timeout:?}"
                )),
                openraft::metrics::WaitError::ShuttingDown => Error::Unavailable("consensus is shutting down".into()),
            })
    }

    /// Sleeps one tick (or until the deadline).
    pub(super) async fn pause(&self, deadline: Instant) {
        let until = (Instant::now() + self.timing.tick).min(deadline);
        tokio::time::sleep_until(until).await;
    }

    /// Removes a peer (`DELETE /cluster/peer/{id}`): refused while it holds shard replicas unless
    /// `force` (which drops them); 404 for a peer that is not part of the cluster.
    pub async fn remove_peer(&self, peer_id: PeerId, force: bool, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let mut last_problem = String::from("no leader is known");
        let index = loop {
            if Instant::now() >= deadline {
                return Err(not_committed(timeout, &last_problem));
            }
            match self.leader() {
                Some((leader, _)) if leader == self.id => {
                    match self.remove_peer_as_leader(peer_id, force, deadline).await {
                        Err(Error::Unavailable(msg)) => last_problem = msg,
                        other => break other?,
                    }
                }
                Some((leader, uri)) => {
                    let remaining = deadline.saturating_duration_since(Instant::now());
                    let request = RemovePeerRequest {
                        peer_id,
                        force,
                        timeout_ms: remaining.as_millis() as u64,
                    };
                    match self
                        .clients
                        .call(&uri, Some(leader), remaining, |mut c| async move {
                            c.remove_peer(request).await
                        })
                        .await
                    {
                        Ok(reply) => match reply.error {
                            None => break reply.index,
                            Some(e) => match from_peer_error(e) {
                                Error::Unavailable(msg) => last_problem = msg,
                                other => return Err(other),
                            },
                        },
                        Err(e) => last_problem = format!("leader {leader}: {e}"),
                    }
                }
                None => last_problem = "no leader is elected (is a majority of the peers up?)".into(),
            }
            self.pause(deadline).await;
        };
        self.wait_applied(index, deadline, timeout).await
    }

    /// The leader's commit index: asked over gRPC unless this peer leads.
    pub async fn leader_commit(&self) -> Result<u64> {
        match self.leader() {
            None => Err(Error::Unavailable("no leader is known".into())),
            Some((leader, _)) if leader == self.id => self.local_commit().await,
            Some((leader, uri)) => {
                // Bounded well below a Kubernetes probe timeout (1 s by default).
                let timeout = self.timing.rpc.min(Duration::from_millis(800));
                self.ask_leader_commit(leader, &uri, timeout).await
            }
        }
    }

    /// The leader's answer to `GetCommit`: its commit index, confirmed by a quorum round.
    async fn ask_leader_commit(&self, leader: PeerId, uri: &str, timeout: Duration) -> Result<u64> {
        let reply = self
            .clients
            .call(uri, Some(leader), timeout, |mut c| async move {
                c.get_commit(GetCommitRequest {}).await
            })
            .await?;
        match reply.error {
            Some(e) => Err(from_peer_error(e)),
            None => Ok(reply.commit),
        }
    }

    /// A read index: an index of the log that holds every entry committed before this call
    /// began, confirmed by the leader with a round of heartbeats to a quorum (so a deposed or
    /// cut-off leader cannot answer). A peer that has applied it reads a state at least as new
    /// as any write acknowledged before the read started: a linearizable read.
    pub async fn read_index(&self, timeout: Duration) -> Result<u64> {
        match self.leader() {
            None => Err(Error::Unavailable(
                "no consensus leader is known: this peer cannot tell whether its view of the cluster is current".into(),
            )),
            Some((leader, _)) if leader == self.id => self.confirmed_commit().await,
            Some((leader, uri)) => self.ask_leader_commit(leader, &uri, timeout).await,
        }
    }

    /// As the leader: the read index, once a quorum confirmed this peer still leads.
    pub async fn confirmed_commit(&self) -> Result<u64> {
        let (read, _applied) = self
            .raft
            .get_read_log_id()
            .await
            .map_err(|e| Error::Unavailable(format!("leadership not confirmed: {e}")))?;
        Ok(read.map(|l| l.index).unwrap_or(0))
    }

    /// Waits until this peer applied a read index taken now (see [`Consensus::read_index`]).
    pub async fn sync_view(&self, timeout: Duration) -> Result<u64> {
        let deadline = Instant::now() + timeout;
        let index = self.read_index(timeout).await?;
        self.wait_applied(index, deadline, timeout).await?;
        Ok(index)
    }

    /// This peer's commit index.
    pub async fn local_commit(&self) -> Result<u64> {
        self.raft
            .with_raft_state(|st| st.committed.map(|l| l.index).unwrap_or(0))
            .await
            .map_err(|e| Error::Unavailable(format!("consensus stopped: {e}")))
    }

    /// Ready once this peer has applied at least the leader's commit index as of the first time
    /// it asked; stays ready after that.
    pub async fn is_ready(&self) -> bool {
        if self.ready.load(Ordering::Relaxed) {
            return true;
        }
        let known = *self.ready_target.lock();
        let target = match known {
            Some(t) => t,
            None => match self.leader_commit().await {
                Ok(c) => {
                    *self.ready_target.lock() = Some(c);
                    c
                }
                Err(e) => {
                    tracing::debug!(error = %e, "not ready: cannot learn the leader's commit index");
                    return false;
                }
            },
        };
        let ready = self.applied_index() >= target && self.state().peers.contains_key(&self.id);
        if ready {
            tracing::info!(commit = target, "caught up with the leader: ready");
            self.ready.store(true, Ordering::Relaxed);
        }
        ready
    }

    pub fn metrics(&self) -> ConsensusMetrics {
        let m = self.raft.metrics();
        let m = m.borrow();
        let applied = m.last_applied.map(|l| l.index).unwrap_or(0);
        ConsensusMetrics {
            term: m.current_term,
            commit: applied,
            pending_operations: m.last_log_index.unwrap_or(0).saturating_sub(applied),
            voter: m.membership_config.membership().voter_ids().any(|v| v == self.id),
            peers_total: self.state_rx.borrow().peers.len() as u64,
        }
    }

    /// `GET /cluster` in Qdrant's shape.
    pub fn status(&self) -> Value {
        let m = self.metrics_now();
        let applied = m.last_applied.map(|l| l.index).unwrap_or(0);
        let role = match m.state {
            ServerState::Leader => json!("Leader"),
            ServerState::Follower | ServerState::Learner => json!("Follower"),
            ServerState::Candidate => json!("Candidate"),
            ServerState::Shutdown => Value::Null,
        };
        let is_voter = m.membership_config.membership().voter_ids().any(|v| v == self.id);
        let peers: serde_json::Map<String, Value> = self
            .state_rx
            .borrow()
            .peers
            .iter()
            .map(|(id, info)| (id.to_string(), json!({"uri": info.uri})))
            .collect();
        let thread_status = match &m.running_state {
            Ok(()) => json!({
                "consensus_thread_status": "working",
                "last_update": self.last_update.lock().to_rfc3339_opts(SecondsFormat::Micros, true),
            }),
            Err(e) => json!({"consensus_thread_status": "stopped_with_err", "err": e.to_string()}),
        };
        json!({
            "status": "enabled",
            "peer_id": self.id,
            "peers": peers,
            "raft_info": {
                "term": m.current_term,
                "commit": applied,
                "pending_operations": m.last_log_index.unwrap_or(0).saturating_sub(applied),
                "leader": m.current_leader,
                "role": role,
                "is_voter": is_voter,
            },
            "consensus_thread_status": thread_status,
            "message_send_failures": failures_json(&self.clients.failures()),
        })
    }

    /// Stops the background tasks and the Raft instance (graceful shutdown).
    pub async fn shutdown(&self) {
        for task in self.tasks.lock().drain(..) {
            task.abort();
        }
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "raft shutdown");
        }
    }

    /// Whether `peer` is a voter or learner of the current membership.
    pub fn is_member(&self, peer: PeerId) -> bool {
        self.raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .get_node(&peer)
            .is_some()
    }

    pub(super) fn membership_nodes(&self) -> BTreeMap<PeerId, PeerNode> {
        let m = self.raft.metrics();
        let m = m.borrow();
        m.membership_config
            .membership()
            .nodes()
            .map(|(id, node)| (*id, node.clone()))
            .collect()
    }
}

pub(super) enum LocalCommitError {
    NotLeader,
    NoQuorum,
    Failed(Error),
}

fn not_committed(timeout: Duration, problem: &str) -> Error {
    Error::Timeout(format!(
        "consensus operation was not committed within {:.1}s: {problem}",
        timeout.as_secs_f64()
    ))
}

fn failures_json(failures: &BTreeMap<String, SendFailure>) -> Value {
    let map: serde_json::Map<String, Value> = failures
        .iter()
        .map(|(uri, f)| {
            (
                uri.clone(),
                json!({
                    "count": f.count,
                    "latest_error": f.latest_error,
                    "latest_error_timestamp": f.latest_error_timestamp.to_rfc3339_opts(SecondsFormat::Micros, true),
                }),
            )
        })
        .collect();
    Value::Object(map)
}
