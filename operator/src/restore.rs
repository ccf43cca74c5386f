//! `spec.restoreFrom` of a QdrantCluster, pure: the next restore status and whether to start
//! (or clean up) the restore Job; and the gate that keeps Available false until the restore
//! succeeded.

use crate::backup::agent::AgentResult;
use crate::crd::{RestoreFrom, RestorePhase, RestoreStatus};
use crate::status::{ConditionSpec, AVAILABLE};

/// The restore Job as the reconciler sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RestoreJob {
    Running,
    Succeeded(AgentResult),
    Failed(String),
}

/// What to do about the restore.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestoreDecision {
    pub status: Option<RestoreStatus>,
    pub start_job: bool,
    pub delete_job: bool,
}

/// Decides the restore step. `formed`: every desired peer is ready and in the Raft cluster
/// with an agreed leader. `backup_found`: the referenced QdrantBackup exists. `now`: RFC 3339.
pub fn decide(
    restore_from: Option<&RestoreFrom>,
    current: Option<&RestoreStatus>,
    formed: bool,
    backup_found: bool,
    job: Option<&RestoreJob>,
    job_name: &str,
    now: &str,
) -> RestoreDecision {
    let Some(from) = restore_from else {
        return RestoreDecision {
            status: current.cloned(),
            start_job: false,
            delete_job: false,
        };
    };
    let status = |phase, message: &str| RestoreStatus {
        phase,
        backup: from.backup.clone(),
        id: from.id.clone(),
        job: Some(job_name.to_string()),
        message: Some(message.to_string()),
        completed_at: None,
    };
    // Done (or given up) once: never again, the Job is cleaned up after success.
    if let Some(done) = current.filter(|c| matches!(c.phase, RestorePhase::Succeeded | RestorePhase::Failed)) {
        return RestoreDecision {
            status: Some(done.clone()),
            start_job: false,
            delete_job: done.phase == RestorePhase::Succeeded && job.is_some(),
        };
    }
    match job {
        Some(RestoreJob::Running) => RestoreDecision {
            status: Some(status(RestorePhase::Running, "restoring every collection")),
            start_job: false,
            delete_job: false,
        },
        Some(RestoreJob::Succeeded(result)) => RestoreDecision {
            status: Some(RestoreStatus {
                id: result.restored.clone().or_else(|| from.id.clone()),
                completed_at: Some(now.to_string()),
                ..status(RestorePhase::Succeeded, "every collection was restored")
            }),
            start_job: false,
            delete_job: true,
        },
        Some(RestoreJob::Failed(message)) => RestoreDecision {
            status: Some(RestoreStatus {
                completed_at: Some(now.to_string()),
                ..status(RestorePhase::Failed, message)
            }),
            start_job: false,
            delete_job: false,
        },
        None if !backup_found => RestoreDecision {
            status: Some(status(
                RestorePhase::Pending,
                &format!("QdrantBackup {} does not exist", from.backup),
            )),
            start_job: false,
            delete_job: false,
        },
        None if !formed => RestoreDecision {
            status: Some(status(
                RestorePhase::Pending,
                "waiting for every peer to join the cluster",
            )),
            start_job: false,
            delete_job: false,
        },
        None => RestoreDecision {
            status: Some(status(RestorePhase::Running, "restore job started")),
            start_job: true,
            delete_job: false,
        },
    }
}

/// Available stays false while a requested restore has not succeeded.
pub fn gate_available(
    conditions: &mut [ConditionSpec],
    restore_from: Option<&RestoreFrom>,
    restore: Option<&RestoreStatus>,
) {
    if restore_from.is_none() {
        return;
    }
    let (reason, message) = match restore {
        Some(r) if r.phase == RestorePhase::Succeeded => return,
        Some(r) if r.phase == RestorePhase::Failed => (
            "RestoreFailed",
            format!(
                "restoring from QdrantBackup {} failed: {}",
                r.backup,
                r.message.as_deref().unwrap_or("")
            ),
        ),
        Some(r) => (
            "Restoring",
            format!(
                "restoring from QdrantBackup {}: {}",
                r.backup,
                r.message.as_deref().unwrap_or("")
            ),
        ),
        None => ("Restoring", "the restore has not started".to_string()),
    };
    for c in conditions.iter_mut().filter(|c| c.type_ == AVAILABLE) {
        *c = ConditionSpec::new(AVAILABLE, false, reason, message.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from() -> RestoreFrom {
        RestoreFrom {
            backup: "nightly".to_string(),
            id: None,
        }
    }

    const NOW: &str = "2026-12-07T12:00:00Z";

    #[test]
    fn waits_for_the_cluster_then_starts_once() {
        let f = from();
        let d = decide(Some(&f), None, false, true, None, "demo-restore", NOW);
        assert_eq!(d.status.as_ref().map(|s| s.phase), Some(RestorePhase::Pending));
        assert!(!d.start_job);
        let d = decide(Some(&f), d.status.as_ref(), false, false, None, "demo-restore", NOW);
        assert!(d
            .status
            .as_ref()
            .and_then(|s| s.message.as_deref())
            .is_some_and(|m| m.contains("does not exist")));
        let d = decide(Some(&f), d.status.as_ref(), true, true, None, "demo-restore", NOW);
        assert!(d.start_job);
        let running = decide(
            Some(&f),
            d.status.as_ref(),
            true,
            true,
            Some(&RestoreJob::Running),
            "demo-restore",
            NOW,
        );
        assert!(!running.start_job);
        assert_eq!(running.status.as_ref().map(|s| s.phase), Some(RestorePhase::Running));
        let result = AgentResult {
            restored: Some("20261207T030000Z".to_string()),
            ..AgentResult::default()
        };
        let done = decide(
            Some(&f),
            running.status.as_ref(),
            true,
            true,
            Some(&RestoreJob::Succeeded(result)),
            "demo-restore",
            NOW,
        );
        let status = done.status.clone().expect("status");
        assert_eq!(status.phase, RestorePhase::Succeeded);
        assert_eq!(status.id.as_deref(), Some("20261207T030000Z"));
        assert!(done.delete_job);
        // Later reconciles: never started again, even without the Job.
        let later = decide(Some(&f), Some(&status), true, true, None, "demo-restore", NOW);
        assert!(!later.start_job && !later.delete_job);
        assert_eq!(later.status, Some(status));
    }

    #[test]
    fn a_failed_restore_is_not_retried() {
        let f = from();
        let d = decide(
            Some(&f),
            None,
            true,
            true,
            Some(&RestoreJob::Failed("checksum mismatch".to_string())),
            "demo-restore",
            NOW,
        );
        let status = d.status.expect("status");
        assert_eq!(status.phase, RestorePhase::Failed);
        let again = decide(Some(&f), Some(&status), true, true, None, "demo-restore", NOW);
        assert!(!again.start_job);
    }

    #[test]
    fn available_is_gated_until_the_restore_succeeded() {
        let available = || vec![ConditionSpec::new(AVAILABLE, true, "QuorumReady", "3 of 3")];
        let f = from();
        let mut c = available();
        gate_available(&mut c, None, None);
        assert!(c[0].status, "no restore requested");
        let mut c = available();
        gate_available(&mut c, Some(&f), None);
        assert!(!c[0].status);
        assert_eq!(c[0].reason, "Restoring");
        let mut status = RestoreStatus {
            phase: RestorePhase::Running,
            backup: "nightly".to_string(),
            id: None,
            job: None,
            message: None,
            completed_at: None,
        };
        let mut c = available();
        gate_available(&mut c, Some(&f), Some(&status));
        assert_eq!(c[0].reason, "Restoring");
        status.phase = RestorePhase::Failed;
        let mut c = available();
        gate_available(&mut c, Some(&f), Some(&status));
        assert_eq!(c[0].reason, "RestoreFailed");
        status.phase = RestorePhase::Succeeded;
        let mut c = available();
        gate_available(&mut c, Some(&f), Some(&status));
        assert!(c[0].status);
    }
}
