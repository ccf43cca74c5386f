//! The operator binary: CLI, logging, `/metrics` + `/healthz`, leader election, controller.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use kube::Client;
use operator::backup::agent::{run_agent, AgentArgs};
use operator::backup_controller::{self, BackupContext};
use operator::cluster_api::HttpProvider;
use operator::lease::{LeaderElector, LeaseSettings};
use operator::metrics::Metrics;
use operator::reconcile::{self, Context};
use operator::{server, Error};
use tokio::sync::watch;
use tracing::{error, info};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// Kubernetes operator for QdrantCluster (qdrant.dev/v1alpha1).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address of the `/metrics` and `/healthz` endpoints.
    #[arg(long, env = "METRICS_ADDR", default_value = "0.0.0.0:8080")]
    metrics_addr: SocketAddr,
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "WATCH_NAMESPACE")]
    namespace: Option<String>,
    /// Elect a leader through a Lease so several replicas can run.
    #[arg(long, env = "LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    leader_election: bool,
    /// Name of the Lease.
    #[arg(long, env = "LEASE_NAME", default_value = "qdrant-operator")]
    lease_name: String,
    /// Namespace of the Lease (the operator's own namespace).
    #[arg(long, env = "POD_NAMESPACE", default_value = "qdrant-operator")]
    lease_namespace: String,
    /// This replica's identity (its pod name).
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "json")]
    log_format: LogFormat,
    /// Image of the backup and restore Jobs (this operator's own image).
    #[arg(long, env = "OPERATOR_IMAGE")]
    agent_image: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Back up or restore a cluster (what the backup and restore Jobs run).
    BackupAgent(AgentArgs),
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn wait_for_signal(stop: watch::Sender<bool>) {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
    info!("shutting down");
    let _ = stop.send(true);
}

async fn run(args: Args) -> Result<(), Error> {
    let metrics = Metrics::new();
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(wait_for_signal(stop_tx));

    let listener = tokio::net::TcpListener::bind(args.metrics_addr).await?;
    info!(addr = %args.metrics_addr, "serving /metrics and /healthz");
    let mut server_stop = stop_rx.clone();
    let app = server::router(metrics.clone());
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = server_stop.wait_for(|stop| *stop).await;
        };
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
            error!(error = %e, "metrics server failed");
        }
    });

    let client = Client::try_default().await?;
    let identity = args
        .identity
        .clone()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "qdrant-operator".to_string());
    let ctx = Arc::new(
        Context::new(client.clone(), HttpProvider, metrics.clone(), Some(identity.clone()))
            .with_agent_image(args.agent_image.clone()),
    );
    let backup_ctx = Arc::new(BackupContext::new(
        client.clone(),
        metrics.clone(),
        Some(identity.clone()),
        args.agent_image.clone(),
    ));
    let namespace = args.namespace.filter(|ns| !ns.is_empty());
    let controllers = {
        let namespace = namespace.clone();
        async move {
            let (clusters, backups) = tokio::join!(
                reconcile::run(ctx, namespace.clone()),
                backup_controller::run(backup_ctx, namespace)
            );
            clusters.and(backups)
        }
    };

    if !args.leader_election {
        metrics.leader.set(1);
        return controllers.await;
    }
    let elector = LeaderElector::new(
        client,
        LeaseSettings::new(&args.lease_name, &args.lease_namespace, &identity),
    );
    if !elector.acquire(&stop_rx).await {
        return Ok(());
    }
    metrics.leader.set(1);
    info!(%identity, lease = args.lease_name, "acquired the leader lease");
    let controller = controllers;
    tokio::pin!(controller);
    let renewing = elector.keep_renewing(&metrics, &stop_rx);
    tokio::pin!(renewing);
    let result = tokio::select! {
        result = &mut controller => result,
        result = &mut renewing => match result {
            // Shutting down: let in-flight reconciles finish.
            Ok(()) => controller.as_mut().await,
            Err(e) => Err(e),
        },
    };
    metrics.leader.set(0);
    if let Err(e) = elector.release().await {
        error!(error = %e, "cannot release the leader lease");
    }
    result
}

#[tokio::main]
async fn main() -> ExitCode {
    let mut args = Args::parse();
    init_tracing(args.log_format);
    if let Some(Command::BackupAgent(agent)) = args.command.take() {
        return run_agent(agent).await;
    }
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!(error = %e, "operator stopped");
            ExitCode::FAILURE
        }
    }
}
