//! The leader's duties: admitting joiners as learners, removing peers, committing forwarded
//! proposals, and a background task that promotes caught-up learners to voters one at a time and
//! keeps `ClusterState.peers` in step with the Raft membership.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{ChangeMembershipError, ClientWriteError, RaftError};
use openraft::{ChangeMembers, ServerState};
use tokio::time::Instant;

use super::consensus::{Consensus, LocalCommitError};
use super::state::{same_uri, ClusterOp, PeerId};
use super::types::{PeerNode, Proposal};
use super::wire::from_peer_error;
use crate::error::{Error, Result};
use crate::peer_proto::JoinRequest;

/// How far (in entries) a learner may trail the leader and still be promoted.
const PROMOTION_LAG: u64 = 5;

fn not_leader(id: PeerId) -> Error {
    Error::Unavailable(format!("peer {id} is not the leader"))
}

/// Validates a peer URI: absolute http(s) with a host and a port.
pub fn validate_peer_uri(uri: &str) -> Result<()> {
    let parsed: axum::http::Uri = uri
        .parse()
        .map_err(|e| Error::bad_input(format!("`{uri}` is not a valid peer URI: {e}")))?;
    if !matches!(parsed.scheme_str(), Some("http") | Some("https")) {
        return Err(Error::bad_input(format!(
            "peer URI `{uri}` must start with http:// or https://"
        )));
    }
    if parsed.host().is_none_or(|h| h.is_empty()) {
        return Err(Error::bad_input(format!("peer URI `{uri}` has no host")));
    }
    if parsed.port_u16().is_none() {
        return Err(Error::bad_input(format!("peer URI `{uri}` has no port")));
    }
    Ok(())
}

impl Consensus {
    /// Admits a peer (any member may receive this; non-leaders forward it). Returns the URI the
    /// cluster registered and the log index of its `AddPeer` entry.
    pub async fn handle_join(&self, peer_id: PeerId, uri: String) -> Result<(String, u64)> {
        validate_peer_uri(&uri)?;
        let deadline = Instant::now() + self.timing.rpc;
        match self.leader() {
            Some((leader, _)) if leader == self.id => {
                let index = self.join_as_leader(peer_id, &uri, deadline).await?;
                Ok((uri, index))
            }
            Some((leader, leader_uri)) => {
                let request = JoinRequest {
                    peer_id,
                    uri: uri.clone(),
                    p2p_port: 0,
                };
                let reply = self
                    .clients
                    .call(&leader_uri, Some(leader), self.timing.rpc, |mut c| async move {
                        c.join(request).await
                    })
                    .await?;
                match reply.error {
                    Some(e) => Err(from_peer_error(e)),
                    None => Ok((reply.uri, reply.index)),
                }
            }
            None => Err(Error::Unavailable("the cluster has no leader right now".into())),
        }
    }

    fn is_live(&self, peer: PeerId) -> bool {
        peer == self.id
            || self
                .clients
                .last_success(peer)
                .is_some_and(|t| t.elapsed() < self.timing.liveness_window())
    }

    async fn join_as_leader(&self, peer_id: PeerId, uri: &str, deadline: Instant) -> Result<u64> {
        let _membership = self.membership_lock.lock().await;
        let state = self.state();
        let nodes = self.membership_nodes();

        // Someone else holding this URI: refuse while alive or holding data, else replace it.
        let holders: BTreeSet<PeerId> = nodes
            .iter()
            .filter(|(_, n)| same_uri(&n.uri, uri))
            .map(|(id, _)| *id)
            .chain(state.peer_by_uri(uri))
            .filter(|id| *id != peer_id)
            .collect();
        for other in holders {
            if self.is_live(other) {
                return Err(Error::BadRequest(format!(
                    "peer URI {uri} is already used by live peer {other}: a restarted peer keeps its id in its \
                     storage directory; start it with its old storage, or remove peer {other} first"
                )));
            }
            if state.peer_replica_count(other) > 0 {
                return Err(Error::BadRequest(format!(
                    "peer URI {uri} belongs to peer {other}, which is down but holds shard replicas; remove it \
                     with DELETE /cluster/peer/{other}?force=true first"
                )));
            }
            tracing::warn!(old = other, new = peer_id, %uri, "replacing a dead peer that held the same URI");
            self.remove_member(other, false, deadline).await?;
        }

        match nodes.get(&peer_id) {
            Some(node) if same_uri(&node.uri, uri) => {
                tracing::info!(peer = peer_id, %uri, "peer re-joined with its id");
            }
            Some(node) => {
                if self.is_live(peer_id) {
                    return Err(Error::BadRequest(format!(
                        "peer id {peer_id} is already used by a live peer at {}",
                        node.uri
                    )));
                }
                tracing::info!(peer = peer_id, old = %node.uri, new = %uri, "peer changed its URI");
                self.change_membership(
                    ChangeMembers::SetNodes([(peer_id, PeerNode { uri: uri.to_string() })].into()),
                    deadline,
                )
                .await?;
            }
            None => {
                tracing::info!(peer = peer_id, %uri, "adding peer as a learner");
                let remaining = deadline.saturating_duration_since(Instant::now());
                let added = tokio::time::timeout(
                    remaining,
                    self.raft.add_learner(peer_id, PeerNode { uri: uri.to_string() }, false),
                )
                .await;
                match added {
                    Err(_) => return Err(Error::Timeout("adding the learner was not committed in time".into())),
                    Ok(Err(e)) => return Err(membership_error(e)),
                    Ok(Ok(_)) => {}
                }
            }
        }
        self.propose_as_leader(
            ClusterOp::AddPeer {
                peer_id,
                uri: uri.to_string(),
            },
            deadline,
        )
        .await
    }

    /// Removes `peer` from `ClusterState` (refused if it holds replicas and not `force`) and then
    /// from the Raft membership. Returns the index of the `RemovePeer` entry.
    pub async fn remove_peer_as_leader(&self, peer: PeerId, force: bool, deadline: Instant) -> Result<u64> {
        let _membership = self.membership_lock.lock().await;
        let known = self.state().peers.contains_key(&peer) || self.membership_nodes().contains_key(&peer);
        if !known {
            return Err(Error::not_found(format!("Peer {peer} is not part of the cluster")));
        }
        self.remove_member(peer, force, deadline).await
    }

    /// Must hold `membership_lock`.
    async fn remove_member(&self, peer: PeerId, force: bool, deadline: Instant) -> Result<u64> {
        let m = self.metrics_now();
        let membership = m.membership_config.membership();
        let voters: BTreeSet<PeerId> = membership.voter_ids().collect();
        if voters.len() == 1 && voters.contains(&peer) {
            return Err(Error::BadRequest(format!(
                "Cannot remove peer {peer}: it is the only voter of the cluster"
            )));
        }
        let index = self
            .propose_as_leader(ClusterOp::RemovePeer { peer_id: peer, force }, deadline)
            .await?;
        let uri = membership.get_node(&peer).map(|n| n.uri.clone());
        if voters.contains(&peer) {
            self.change_membership(ChangeMembers::RemoveVoters([peer].into()), deadline)
                .await?;
        } else if uri.is_some() {
            self.change_membership(ChangeMembers::RemoveNodes([peer].into()), deadline)
                .await?;
        }
        if let Some(uri) = uri {
            self.clients.forget(&uri, peer);
        }
        tracing::info!(peer, force, "removed peer from the cluster");
        Ok(index)
    }

    async fn change_membership(&self, change: ChangeMembers<PeerId, PeerNode>, deadline: Instant) -> Result<()> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(remaining, self.raft.change_membership(change, false)).await {
            Err(_) => Err(Error::Timeout(
                "the membership change was not committed in time (is a majority of the peers up?)".into(),
            )),
            Ok(Err(e)) => Err(membership_error(e)),
            Ok(Ok(_)) => Ok(()),
        }
    }

    /// Commits `op` as the leader (for forwarded proposals and the leader's own housekeeping).
    pub(super) async fn propose_as_leader(&self, op: ClusterOp, deadline: Instant) -> Result<u64> {
        self.commit_proposal_as_leader(Proposal::new(op), deadline).await
    }

    /// Commits a proposal forwarded by another peer; `Unavailable` when this peer does not lead.
    pub async fn commit_proposal_as_leader(&self, proposal: Proposal, deadline: Instant) -> Result<u64> {
        match self.commit_local(proposal, deadline).await {
            Ok(index) => Ok(index),
            Err(LocalCommitError::NotLeader) => Err(not_leader(self.id)),
            Err(LocalCommitError::NoQuorum) => Err(Error::Timeout(
                "the leader did not get a majority of voters to acknowledge the entry in time".into(),
            )),
            Err(LocalCommitError::Failed(e)) => Err(e),
        }
    }

    /// One round of the leader's housekeeping; see [`spawn_leader_duties`].
    async fn leader_round(&self) {
        let m = self.metrics_now();
        if m.state != ServerState::Leader {
            return;
        }
        let membership = m.membership_config.membership().clone();
        if membership.get_joint_config().len() > 1 {
            return;
        }
        let Ok(_membership) = self.membership_lock.try_lock() else {
            return;
        };
        let deadline = Instant::now() + self.timing.rpc;

        // Every Raft member is a peer in the cluster state, with the same URI.
        let state = self.state();
        for (id, node) in membership.nodes() {
            let registered = state.peers.get(id).is_some_and(|p| same_uri(&p.uri, &node.uri));
            if !registered {
                tracing::info!(peer = *id, uri = %node.uri, "registering raft member as a peer");
                if let Err(e) = self
                    .propose_as_leader(
                        ClusterOp::AddPeer {
                            peer_id: *id,
                            uri: node.uri.clone(),
                        },
                        deadline,
                    )
                    .await
                {
                    tracing::warn!(peer = *id, error = %e, "cannot register peer");
                    return;
                }
            }
        }

        // Promote the first caught-up, live learner.
        let last_log = m.last_log_index.unwrap_or(0);
        let replication = m.replication.clone().unwrap_or_default();
        let learners: Vec<PeerId> = membership.learner_ids().collect();
        for learner in learners {
            let matched = replication
                .get(&learner)
                .cloned()
                .flatten()
                .map(|l| l.index)
                .unwrap_or(0);
            let caught_up = matched + PROMOTION_LAG >= last_log;
            if !caught_up || !self.is_live(learner) || !self.state().peers.contains_key(&learner) {
                continue;
            }
            tracing::info!(peer = learner, matched, last_log, "promoting learner to voter");
            match self
                .change_membership(ChangeMembers::AddVoterIds([learner].into()), deadline)
                .await
            {
                Ok(()) => tracing::info!(peer = learner, "learner promoted to voter"),
                Err(e) => tracing::warn!(peer = learner, error = %e, "promotion failed; will retry"),
            }
            return;
        }
    }
}

fn membership_error(e: RaftError<PeerId, ClientWriteError<PeerId, PeerNode>>) -> Error {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => Error::Unavailable(format!(
            "leadership moved to {:?} during a membership change",
            f.leader_id
        )),
        RaftError::APIError(ClientWriteError::ChangeMembershipError(ChangeMembershipError::InProgress(p))) => {
            Error::Unavailable(format!("another membership change is in progress: {p}"))
        }
        RaftError::APIError(ClientWriteError::ChangeMembershipError(c)) => {
            Error::BadRequest(format!("membership change refused: {c}"))
        }
        RaftError::Fatal(f) => Error::internal(format!("consensus stopped: {f}")),
    }
}

/// The leader's background loop: every few ticks, registers members and promotes a learner.
pub fn spawn_leader_duties(consensus: &Arc<Consensus>) -> tokio::task::JoinHandle<()> {
    let weak = Arc::downgrade(consensus);
    let period = consensus.timing.tick.max(Duration::from_millis(50));
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            let Some(consensus) = weak.upgrade() else { return };
            if consensus.raft.metrics().borrow().running_state.is_ok() {
                // The consensus loop is alive: `last_update` of `GET /cluster`.
                consensus.touch();
            }
            consensus.leader_round().await;
        }
    })
}

/// Follows Raft metrics: the `last_update` of `GET /cluster` and log lines on leader changes.
pub fn spawn_metrics_watch(consensus: &Arc<Consensus>) -> tokio::task::JoinHandle<()> {
    let weak = Arc::downgrade(consensus);
    let mut rx = consensus.raft.metrics();
    tokio::spawn(async move {
        let mut leader: Option<PeerId> = None;
        let mut voter = false;
        while rx.changed().await.is_ok() {
            let Some(consensus) = weak.upgrade() else { return };
            consensus.touch();
            let (now_leader, term, is_voter) = {
                let m = rx.borrow();
                (
                    m.current_leader,
                    m.current_term,
                    m.membership_config.membership().voter_ids().any(|v| v == consensus.id),
                )
            };
            if now_leader != leader {
                tracing::info!(leader = ?now_leader, term, "raft leader changed");
                leader = now_leader;
            }
            if is_voter != voter {
                tracing::info!(voter = is_voter, "raft voter status changed");
                voter = is_voter;
            }
        }
    })
}
