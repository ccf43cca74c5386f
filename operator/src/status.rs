//! Status of a QdrantCluster: phase and the Available / Progressing / Degraded conditions.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::cluster_api::ShardOperation;
use crate::crd::Phase;
use crate::planner::{ClusterAction, Step};

pub const AVAILABLE: &str = "Available";
pub const PROGRESSING: &str = "Progressing";
pub const DEGRADED: &str = "Degraded";

/// One condition before timestamps are attached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConditionSpec {
    pub type_: &'static str,
    pub status: bool,
    pub reason: String,
    pub message: String,
}

impl ConditionSpec {
    pub fn new(
        type_: &'static str,
        status: bool,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> ConditionSpec {
        ConditionSpec {
            type_,
            status,
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// What a step means for Progressing: `(reason, message)`, or `None` when nothing progresses.
pub fn progress(step: &Step) -> Option<(String, String)> {
    let (reason, message) = match step {
        Step::Idle | Step::Blocked { .. } => return None,
        Step::Create => ("Creating", "creating the cluster's objects".to_string()),
        Step::Wait { reason, message } => (*reason, message.clone()),
        Step::ScaleUp { from, to } => ("ScalingUp", format!("scaling from {from} to {to} peers")),
        Step::Shrink { from, to } => (
            "ScalingDown",
            format!("the peer of pod {to} left the cluster; scaling from {from} to {to} pods"),
        ),
        Step::Suspend { from } => ("Suspending", format!("stopping {from} pods; volumes are kept")),
        Step::Resume { to } => ("Resuming", format!("starting {to} pods on their volumes")),
        Step::Cluster { action, .. } => match action {
            ClusterAction::Shard {
                collection,
                operation,
                drain,
            } => (
                if *drain { "Draining" } else { "Rebalancing" },
                describe_operation(collection, operation),
            ),
            ClusterAction::RemovePeer { peer, ordinal } => (
                "RemovingPeer",
                format!("removing peer {peer} (pod {ordinal}) from the cluster"),
            ),
        },
        Step::RestartPods {
            ordinals,
            all_at_once,
            reason,
        } => (
            if *all_at_once {
                "RestartingAllPods"
            } else {
                "RollingRestart"
            },
            format!(
                "restarting pod(s) {} with the new template ({reason})",
                ordinals.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
            ),
        ),
        Step::DeletePvcs { ordinals } => (
            "DeletingVolumes",
            format!(
                "deleting the volumes of departed pods {}",
                ordinals.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
            ),
        ),
    };
    Some((reason.to_string(), message))
}

/// A readable description of a shard operation.
pub fn describe_operation(collection: &str, operation: &ShardOperation) -> String {
    match operation {
        ShardOperation::MoveShard(t) => format!(
            "moving shard {} of collection {collection} from peer {} to peer {}",
            t.shard_id, t.from_peer_id, t.to_peer_id
        ),
        ShardOperation::ReplicateShard(t) => format!(
            "replicating shard {} of collection {collection} from peer {} to peer {}",
            t.shard_id, t.from_peer_id, t.to_peer_id
        ),
        ShardOperation::DropReplica(d) => format!(
            "dropping the replica of shard {} of collection {collection} on peer {}",
            d.shard_id, d.peer_id
        ),
    }
}

/// Inputs of the Available condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Availability {
    pub desired: i32,
    pub ready: i32,
    /// The cluster answered and agrees on a leader.
    pub leader: Option<u64>,
    /// Why the cluster could not be observed.
    pub unobservable: Option<String>,
}

/// The three conditions for a planned step.
pub fn conditions_for(step: &Step, phase: Phase, availability: &Availability) -> Vec<ConditionSpec> {
    let available = if phase == Phase::Suspended {
        ConditionSpec::new(AVAILABLE, false, "Suspended", "the cluster is suspended")
    } else if let Some(why) = &availability.unobservable {
        ConditionSpec::new(AVAILABLE, false, "ClusterUnobservable", why.clone())
    } else {
        match availability.leader {
            Some(leader) if availability.ready * 2 > availability.desired => ConditionSpec::new(
                AVAILABLE,
                true,
                "QuorumReady",
                format!(
                    "{} of {} peers ready, Raft leader is peer {leader}",
                    availability.ready, availability.desired
                ),
            ),
            Some(_) => ConditionSpec::new(
                AVAILABLE,
                false,
                "NoQuorum",
                format!(
                    "only {} of {} peers are ready",
                    availability.ready, availability.desired
                ),
            ),
            None => ConditionSpec::new(AVAILABLE, false, "NoLeader", "the cluster has no agreed Raft leader"),
        }
    };
    let progressing = match (step, progress(step)) {
        (Step::Blocked { .. }, _) => ConditionSpec::new(PROGRESSING, false, "Blocked", "see the Degraded condition"),
        (_, Some((reason, message))) => ConditionSpec::new(PROGRESSING, true, reason, message),
        (_, None) => ConditionSpec::new(PROGRESSING, false, "Reconciled", "the cluster matches its spec"),
    };
    let degraded = match step {
        Step::Blocked { reason, message } => ConditionSpec::new(DEGRADED, true, *reason, message.clone()),
        Step::Wait { reason, message }
            if matches!(*reason, "ClusterUnobservable" | "NoLeader") && phase != Phase::Creating =>
        {
            ConditionSpec::new(DEGRADED, true, *reason, message.clone())
        }
        _ => ConditionSpec::new(DEGRADED, false, "AsExpected", "no problem detected"),
    };
    vec![available, progressing, degraded]
}

/// Conditions for a spec that cannot be applied (invalid spec, missing Secret).
pub fn conditions_for_rejection(reason: &str, message: &str, previous: &[Condition]) -> Vec<ConditionSpec> {
    let available = previous
        .iter()
        .find(|c| c.type_ == AVAILABLE)
        .map(|c| ConditionSpec::new(AVAILABLE, c.status == "True", c.reason.clone(), c.message.clone()))
        .unwrap_or_else(|| ConditionSpec::new(AVAILABLE, false, reason, "the spec cannot be applied"));
    vec![
        available,
        ConditionSpec::new(PROGRESSING, false, reason, "the spec cannot be applied"),
        ConditionSpec::new(DEGRADED, true, reason, message),
    ]
}

/// Turns specs into conditions, keeping `lastTransitionTime` of conditions whose status did
/// not change.
pub fn merge_conditions(
    previous: &[Condition],
    specs: &[ConditionSpec],
    generation: Option<i64>,
    now: &Time,
) -> Vec<Condition> {
    specs
        .iter()
        .map(|spec| {
            let status = if spec.status { "True" } else { "False" }.to_string();
            let last_transition_time = previous
                .iter()
                .find(|c| c.type_ == spec.type_ && c.status == status)
                .map_or_else(|| now.clone(), |c| c.last_transition_time.clone());
            Condition {
                type_: spec.type_.to_string(),
                status,
                reason: spec.reason.clone(),
                message: spec.message.chars().take(32_000).collect(),
                observed_generation: generation,
                last_transition_time,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(s: &str) -> Time {
        Time(s.parse().expect("timestamp"))
    }

    #[test]
    fn transition_time_only_moves_on_status_change() {
        let t0 = time("2026-01-01T00:00:00Z");
        let t1 = time("2026-01-01T00:05:00Z");
        let first = merge_conditions(
            &[],
            &[ConditionSpec::new(DEGRADED, false, "AsExpected", "")],
            Some(1),
            &t0,
        );
        let same = merge_conditions(
            &first,
            &[ConditionSpec::new(DEGRADED, false, "AsExpected", "still")],
            Some(2),
            &t1,
        );
        assert_eq!(same[0].last_transition_time, t0);
        let changed = merge_conditions(
            &same,
            &[ConditionSpec::new(DEGRADED, true, "NoTargetPeer", "x")],
            Some(2),
            &t1,
        );
        assert_eq!(changed[0].last_transition_time, t1);
        assert_eq!(changed[0].status, "True");
    }

    #[test]
    fn blocked_steps_are_degraded_and_not_progressing() {
        let step = Step::Blocked {
            reason: "NoTargetPeer",
            message: "shard 0".to_string(),
        };
        let availability = Availability {
            desired: 3,
            ready: 3,
            leader: Some(1),
            unobservable: None,
        };
        let conditions = conditions_for(&step, Phase::Blocked, &availability);
        assert!(conditions[0].status, "still available");
        assert!(!conditions[1].status);
        assert!(conditions[2].status);
        assert_eq!(conditions[2].reason, "NoTargetPeer");
        let idle = conditions_for(&Step::Idle, Phase::Healthy, &availability);
        assert_eq!(idle[1].reason, "Reconciled");
        assert!(!idle[2].status);
        let minority = Availability {
            ready: 1,
            ..availability
        };
        assert!(!conditions_for(&Step::Idle, Phase::NotReady, &minority)[0].status);
    }
}
