//! Outcome of an agent Job (backup or restore): running, or finished with the agent's result
//! read from its pod's termination message.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, PropagationPolicy};
use kube::Client;

use crate::backup::agent::AgentResult;
use crate::error::Error;

/// Where a Job is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Running,
    Succeeded(AgentResult),
    Failed(String),
}

/// Termination messages of the `agent` containers of `pods`, newest first, with their exit codes.
fn messages(pods: &[Pod]) -> Vec<(i32, String)> {
    let mut found: Vec<(String, i32, String)> = pods
        .iter()
        .flat_map(|pod| {
            pod.status
                .iter()
                .flat_map(|s| s.container_statuses.iter().flatten())
                .filter(|c| c.name == "agent")
                .filter_map(|c| c.state.as_ref()?.terminated.as_ref())
                .map(|t| {
                    (
                        t.finished_at.as_ref().map(|f| f.0.to_string()).unwrap_or_default(),
                        t.exit_code,
                        t.message.clone().unwrap_or_default(),
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect();
    found.sort_by(|a, b| b.0.cmp(&a.0));
    found.into_iter().map(|(_, code, message)| (code, message)).collect()
}

/// The outcome of `job` given its pods (pure).
pub fn outcome_of(job: &Job, pods: &[Pod]) -> Outcome {
    let status = job.status.clone().unwrap_or_default();
    let messages = messages(pods);
    if status.succeeded.unwrap_or(0) > 0 {
        let parsed = messages
            .iter()
            .filter(|(code, _)| *code == 0)
            .find_map(|(_, m)| serde_json::from_str::<AgentResult>(m.trim()).ok());
        return Outcome::Succeeded(parsed.unwrap_or_default());
    }
    let failed = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Failed" && c.status == "True");
    if let Some(condition) = failed {
        let from_agent = messages.iter().find_map(|(_, m)| {
            match serde_json::from_str::<AgentResult>(m.trim()) {
                Ok(r) => r.error,
                // FallbackToLogsOnError: the tail of the log.
                Err(_) if !m.trim().is_empty() => Some(m.trim().chars().take(1000).collect()),
                Err(_) => None,
            }
        });
        return Outcome::Failed(from_agent.unwrap_or_else(|| {
            format!(
                "{}: {}",
                condition.reason.clone().unwrap_or_default(),
                condition.message.clone().unwrap_or_default()
            )
        }));
    }
    Outcome::Running
}

/// Reads the outcome of `job` (lists its pods when it finished).
pub async fn outcome(client: &Client, namespace: &str, job: &Job) -> Result<Outcome, Error> {
    let finished = job.status.as_ref().is_some_and(|s| {
        s.succeeded.unwrap_or(0) > 0
            || s.conditions
                .iter()
                .flatten()
                .any(|c| c.type_ == "Failed" && c.status == "True")
    });
    if !finished {
        return Ok(Outcome::Running);
    }
    let name = job.metadata.name.clone().unwrap_or_default();
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let pods = pods
        .list(&ListParams::default().labels(&format!("job-name={name}")))
        .await?
        .items;
    Ok(outcome_of(job, &pods))
}

/// Deletes a Job and its pods.
pub async fn delete_job(client: &Client, namespace: &str, name: &str) -> Result<(), Error> {
    let api: Api<Job> = Api::namespaced(client.clone(), namespace);
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..DeleteParams::default()
    };
    match api.delete(name, &params).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(status: serde_json::Value) -> Job {
        serde_json::from_value(serde_json::json!({"metadata": {"name": "j"}, "status": status})).expect("job")
    }

    fn pod(exit: i32, message: &str, finished: &str) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p"},
            "status": {"containerStatuses": [{
                "name": "agent", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": exit, "message": message, "finishedAt": finished}}
            }]}
        }))
        .expect("pod")
    }

    #[test]
    fn reads_results_and_failures() {
        assert_eq!(
            outcome_of(&job(serde_json::json!({"active": 1})), &[]),
            Outcome::Running
        );
        let ok = job(serde_json::json!({"succeeded": 1}));
        let pods = [
            pod(1, r#"{"error":"first try failed"}"#, "2026-12-07T10:00:00Z"),
            pod(0, r#"{"restored":"20261207T030000Z"}"#, "2026-12-07T10:05:00Z"),
        ];
        assert_eq!(
            outcome_of(&ok, &pods),
            Outcome::Succeeded(AgentResult {
                restored: Some("20261207T030000Z".to_string()),
                ..AgentResult::default()
            })
        );
        let failed = job(serde_json::json!({"failed": 2, "conditions": [
            {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}
        ]}));
        assert_eq!(
            outcome_of(&failed, &pods[..1]),
            Outcome::Failed("first try failed".to_string())
        );
        assert_eq!(
            outcome_of(&failed, &[]),
            Outcome::Failed("BackoffLimitExceeded: Job has reached the specified backoff limit".to_string())
        );
        assert_eq!(
            outcome_of(&failed, &[pod(2, "panic: boom", "2026-12-07T10:00:00Z")]),
            Outcome::Failed("panic: boom".to_string())
        );
    }
}
