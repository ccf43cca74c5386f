//! The QdrantBackup controller's decision, pure: from the spec, the status, the backup Jobs
//! and the time, the next status, the Job to start and the Jobs to delete.

use std::time::Duration;

use jiff::Timestamp;

use super::agent::AgentResult;
use super::manifest::backup_id;
use super::schedule::{due, Schedule};
use crate::crd_backup::QdrantBackupStatus;
use crate::status::ConditionSpec;

/// Condition: the schedule is valid and the last run did not fail.
pub const READY: &str = "Ready";
/// Condition: a backup Job is running.
pub const RUNNING: &str = "Running";

/// Longest wait between two reconciles of a QdrantBackup.
pub const MAX_REQUEUE: Duration = Duration::from_secs(300);
/// Requeue while a Job runs.
pub const REQUEUE_RUNNING: Duration = Duration::from_secs(10);

/// A backup Job as the controller sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobView {
    pub name: String,
    /// `qdrant.dev/backup-id`.
    pub id: String,
    pub outcome: JobOutcome,
}

/// Where a Job is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobOutcome {
    Running,
    /// Succeeded, with the agent's result (its termination message).
    Succeeded(AgentResult),
    /// Failed, with the agent's message when there is one.
    Failed(String),
}

/// What the controller knows.
#[derive(Clone, Debug)]
pub struct PlanInput<'a> {
    pub schedule: &'a str,
    pub suspend: bool,
    pub status: &'a QdrantBackupStatus,
    pub jobs: &'a [JobView],
    /// When the QdrantBackup was created (the first run is the first scheduled time after it).
    pub created: Timestamp,
    pub now: Timestamp,
}

/// What to do.
#[derive(Clone, Debug, PartialEq)]
pub struct BackupPlan {
    pub status: QdrantBackupStatus,
    /// Start the Job of this backup id.
    pub start: Option<String>,
    /// Jobs whose result is now recorded.
    pub delete_jobs: Vec<String>,
    pub conditions: Vec<ConditionSpec>,
    /// `(reason, message, warning)` Events.
    pub events: Vec<(&'static str, String, bool)>,
    pub requeue: Duration,
}

/// Decides the next step of a QdrantBackup.
pub fn plan(input: &PlanInput<'_>) -> BackupPlan {
    let mut status = input.status.clone();
    let mut events = Vec::new();
    let mut delete_jobs = Vec::new();
    // 1. Record finished Jobs, oldest first.
    let mut finished: Vec<&JobView> = input.jobs.iter().filter(|j| j.outcome != JobOutcome::Running).collect();
    finished.sort_by(|a, b| a.id.cmp(&b.id));
    for job in finished {
        match &job.outcome {
            JobOutcome::Succeeded(result) => {
                if let Some(record) = &result.backup {
                    status.backups.retain(|b| b.id != record.id);
                    status.backups.push(record.clone());
                    status.last_successful_backup = Some(record.id.clone());
                    status.last_failure = None;
                    events.push((
                        "BackupSucceeded",
                        format!(
                            "backup {} complete: {} collections, {} bytes",
                            record.id,
                            record.collections.len(),
                            record.size_bytes
                        ),
                        false,
                    ));
                } else {
                    status.last_failure = Some(format!("job {} succeeded without a result", job.name));
                }
                status.backups.retain(|b| !result.pruned.contains(&b.id));
                if !result.pruned.is_empty() {
                    events.push(("BackupsPruned", format!("pruned {}", result.pruned.join(", ")), false));
                }
            }
            JobOutcome::Failed(message) => {
                let message = format!("backup {} failed: {message}", job.id);
                events.push(("BackupFailed", message.clone(), true));
                status.last_failure = Some(message);
            }
            JobOutcome::Running => {}
        }
        delete_jobs.push(job.name.clone());
    }
    status.backups.sort_by(|a, b| a.id.cmp(&b.id));
    status.last_successful_backup = status.backups.last().map(|b| b.id.clone());
    let running = input.jobs.iter().find(|j| j.outcome == JobOutcome::Running);
    status.active_job = running.map(|j| j.name.clone());

    // 2. The schedule.
    let schedule = match Schedule::parse(input.schedule) {
        Ok(s) => s,
        Err(e) => {
            status.next_schedule_time = None;
            return BackupPlan {
                conditions: vec![
                    ConditionSpec::new(
                        READY,
                        false,
                        "InvalidSchedule",
                        format!("schedule {:?}: {e}", input.schedule),
                    ),
                    running_condition(running.map(|j| j.name.as_str())),
                ],
                status,
                start: None,
                delete_jobs,
                events,
                requeue: MAX_REQUEUE,
            };
        }
    };
    let last = status
        .last_schedule_time
        .as_deref()
        .and_then(|t| t.parse::<Timestamp>().ok())
        .unwrap_or(input.created);
    let decision = due(&schedule, last, input.now);
    let mut start = None;
    if let Some(at) = decision.run {
        if input.suspend {
            // Skipped while suspended (not run late on resume).
            status.last_schedule_time = Some(at.to_string());
        } else if running.is_none() {
            let id = backup_id(input.now);
            status.last_schedule_time = Some(at.to_string());
            events.push(("BackupStarted", format!("starting backup {id} (scheduled {at})"), false));
            start = Some(id);
        }
        // A run is due while one is still running: it waits (never two at once), and runs
        // once when the running one finished.
    }
    status.next_schedule_time = decision.next.map(|t| t.to_string());
    let ready = match &status.last_failure {
        Some(failure) => ConditionSpec::new(READY, false, "BackupFailed", failure.clone()),
        None if input.suspend => ConditionSpec::new(READY, true, "Suspended", "scheduling is suspended"),
        None => ConditionSpec::new(
            READY,
            true,
            "Scheduled",
            match &status.next_schedule_time {
                Some(next) => format!("next backup at {next}"),
                None => "the schedule has no next run".to_string(),
            },
        ),
    };
    let active = status
        .active_job
        .clone()
        .or_else(|| start.as_ref().map(|id| format!("of backup {id}")));
    let until_next = decision
        .next
        .map(|t| Duration::from_secs(t.duration_since(input.now).as_secs().max(1) as u64))
        .unwrap_or(MAX_REQUEUE);
    let requeue = if active.is_some() {
        REQUEUE_RUNNING
    } else {
        until_next.min(MAX_REQUEUE)
    };
    BackupPlan {
        conditions: vec![ready, running_condition(active.as_deref())],
        status,
        start,
        delete_jobs,
        events,
        requeue,
    }
}

fn running_condition(job: Option<&str>) -> ConditionSpec {
    match job {
        Some(job) => ConditionSpec::new(RUNNING, true, "JobRunning", format!("backup job {job} is running")),
        None => ConditionSpec::new(RUNNING, false, "Idle", "no backup is running"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd_backup::BackupRecord;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("ts")
    }

    fn record(id: &str) -> BackupRecord {
        BackupRecord {
            id: id.to_string(),
            ..BackupRecord::default()
        }
    }

    fn input<'a>(status: &'a QdrantBackupStatus, jobs: &'a [JobView], now: &str) -> PlanInput<'a> {
        PlanInput {
            schedule: "0 * * * *",
            suspend: false,
            status,
            jobs,
            created: ts("2026-12-07T09:30:00Z"),
            now: ts(now),
        }
    }

    #[test]
    fn first_run_waits_for_the_first_scheduled_time() {
        let status = QdrantBackupStatus::default();
        let p = plan(&input(&status, &[], "2026-12-07T09:45:00Z"));
        assert_eq!(p.start, None);
        assert_eq!(p.status.next_schedule_time.as_deref(), Some("2026-12-07T10:00:00Z"));
        assert_eq!(p.requeue, Duration::from_secs(300), "capped");
        let p = plan(&input(&status, &[], "2026-12-07T09:58:00Z"));
        assert_eq!(p.requeue, Duration::from_secs(120), "wakes up at the next run");
        let p = plan(&input(&status, &[], "2026-12-07T10:00:03Z"));
        assert_eq!(p.start.as_deref(), Some("20261207T100003Z"));
        assert_eq!(p.status.last_schedule_time.as_deref(), Some("2026-12-07T10:00:00Z"));
        assert_eq!(p.requeue, REQUEUE_RUNNING);
    }

    #[test]
    fn missed_runs_start_one_backup_not_a_storm() {
        let status = QdrantBackupStatus {
            last_schedule_time: Some("2026-12-07T10:00:00Z".to_string()),
            ..QdrantBackupStatus::default()
        };
        // The operator was down for 5 hours.
        let p = plan(&input(&status, &[], "2026-12-07T15:20:00Z"));
        assert!(p.start.is_some());
        assert_eq!(p.status.last_schedule_time.as_deref(), Some("2026-12-07T15:00:00Z"));
        // The next reconcile, the Job running: nothing more is due.
        let jobs = [JobView {
            name: "b-20261207t152000z".to_string(),
            id: "20261207T152000Z".to_string(),
            outcome: JobOutcome::Running,
        }];
        let again = plan(&input(&p.status, &jobs, "2026-12-07T15:20:10Z"));
        assert_eq!(again.start, None);
        assert_eq!(again.status.active_job.as_deref(), Some("b-20261207t152000z"));
    }

    #[test]
    fn never_two_jobs_at_once_and_suspend_skips() {
        let status = QdrantBackupStatus {
            last_schedule_time: Some("2026-12-07T10:00:00Z".to_string()),
            ..QdrantBackupStatus::default()
        };
        let jobs = [JobView {
            name: "b-x".to_string(),
            id: "20261207T100000Z".to_string(),
            outcome: JobOutcome::Running,
        }];
        let p = plan(&input(&status, &jobs, "2026-12-07T11:00:30Z"));
        assert_eq!(p.start, None, "the previous backup still runs");
        assert_eq!(
            p.status.last_schedule_time.as_deref(),
            Some("2026-12-07T10:00:00Z"),
            "still due"
        );
        let mut suspended = input(&status, &[], "2026-12-07T11:00:30Z");
        suspended.suspend = true;
        let p = plan(&suspended);
        assert_eq!(p.start, None);
        assert_eq!(
            p.status.last_schedule_time.as_deref(),
            Some("2026-12-07T11:00:00Z"),
            "skipped"
        );
        assert_eq!(p.conditions[0].reason, "Suspended");
    }

    #[test]
    fn records_results_prunes_and_failures() {
        let status = QdrantBackupStatus {
            backups: vec![record("20261207T080000Z"), record("20261207T090000Z")],
            last_schedule_time: Some("2026-12-07T10:00:00Z".to_string()),
            ..QdrantBackupStatus::default()
        };
        let jobs = [JobView {
            name: "b-20261207t100000z".to_string(),
            id: "20261207T100000Z".to_string(),
            outcome: JobOutcome::Succeeded(AgentResult {
                backup: Some(record("20261207T100000Z")),
                pruned: vec!["20261207T080000Z".to_string()],
                ..AgentResult::default()
            }),
        }];
        let p = plan(&input(&status, &jobs, "2026-12-07T10:05:00Z"));
        let ids: Vec<&str> = p.status.backups.iter().map(|b| b.id.as_str()).collect();
        assert_eq!(ids, ["20261207T090000Z", "20261207T100000Z"]);
        assert_eq!(p.status.last_successful_backup.as_deref(), Some("20261207T100000Z"));
        assert_eq!(p.delete_jobs, ["b-20261207t100000z"]);
        assert!(p.conditions[0].status);
        // Recording twice (the Job was not deleted yet) changes nothing.
        let again = plan(&input(&p.status, &jobs, "2026-12-07T10:05:10Z"));
        assert_eq!(again.status.backups, p.status.backups);

        let failed = [JobView {
            name: "b-f".to_string(),
            id: "20261207T110000Z".to_string(),
            outcome: JobOutcome::Failed("no node answered".to_string()),
        }];
        let p = plan(&input(&p.status, &failed, "2026-12-07T11:05:00Z"));
        assert!(!p.conditions[0].status);
        assert_eq!(p.conditions[0].reason, "BackupFailed");
        assert!(p
            .status
            .last_failure
            .as_deref()
            .is_some_and(|m| m.contains("no node answered")));
        assert_eq!(p.status.backups.len(), 2, "earlier backups stay");
        assert!(p.events.iter().any(|(r, _, warning)| *r == "BackupFailed" && *warning));
    }

    #[test]
    fn invalid_schedule_is_reported() {
        let status = QdrantBackupStatus::default();
        let mut i = input(&status, &[], "2026-12-07T10:00:00Z");
        i.schedule = "every day";
        let p = plan(&i);
        assert_eq!(p.start, None);
        assert_eq!(p.conditions[0].reason, "InvalidSchedule");
    }
}
