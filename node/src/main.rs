//! `qdrant`: the node binary. CLI and wiring only; everything else lives in the library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use node::node::Node;
use node::settings::Settings;
use tower::Layer;
use tracing_subscriber::EnvFilter;

/// A Qdrant-compatible vector database node.
#[derive(Debug, Parser)]
#[command(name = "qdrant", version, about)]
struct Cli {
    /// Extra YAML config merged over the defaults and ./config/config.yaml.
    #[arg(long, value_name = "PATH")]
    config_path: Option<PathBuf>,
    /// This peer's own p2p URI (cluster mode), e.g. http://10.0.0.1:6335.
    #[arg(long, env = "QDRANT_URI", value_name = "URI", value_parser = parse_uri)]
    uri: Option<String>,
    /// The p2p URI of any member of the cluster to join (cluster mode).
    #[arg(long, env = "QDRANT_BOOTSTRAP", value_name = "URI", value_parser = parse_uri)]
    bootstrap: Option<String>,
    /// Accepted for compatibility with Qdrant's CLI.
    #[arg(long, hide = true)]
    disable_telemetry: bool,
    /// A full snapshot (`POST /snapshots`) to restore at start: every collection and alias.
    #[arg(long, value_name = "PATH")]
    storage_snapshot: Option<PathBuf>,
    /// A collection snapshot to restore at start, as `PATH:COLLECTION` (repeatable).
    #[arg(long, value_name = "PATH:COLLECTION", value_parser = parse_snapshot_arg)]
    snapshot: Vec<(PathBuf, String)>,
    /// With --storage-snapshot/--snapshot: replace collections that exist.
    #[arg(long)]
    force_snapshot: bool,
}

/// `PATH:COLLECTION` of `--snapshot` (split at the last colon).
fn parse_snapshot_arg(s: &str) -> Result<(PathBuf, String), String> {
    match s.rsplit_once(':') {
        Some((path, name)) if !path.is_empty() && !name.is_empty() => Ok((PathBuf::from(path), name.to_string())),
        _ => Err(format!("`{s}` is not PATH:COLLECTION")),
    }
}

/// A peer URI must be an absolute http(s) URI with a host and a port.
fn parse_uri(s: &str) -> Result<String, String> {
    let uri: axum::http::Uri = s.parse().map_err(|e| format!("`{s}` is not a valid URI: {e}"))?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        _ => return Err(format!("`{s}` must start with http:// or https://")),
    }
    if uri.host().is_none_or(|h| h.is_empty()) {
        return Err(format!("`{s}` has no host"));
    }
    if uri.port_u16().is_none() {
        return Err(format!("`{s}` has no port (the p2p port, e.g. :6335)"));
    }
    Ok(s.to_string())
}

fn init_logging(level: &str) {
    // Qdrant's levels are upper case (INFO) and may list per-target levels.
    let filter = EnvFilter::try_new(level.to_ascii_lowercase()).unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let loaded = match Settings::load(cli.config_path.as_deref()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("qdrant: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(&loaded.settings.log_level);
    for f in &loaded.files {
        tracing::info!(file = %f.display(), "loaded config file");
    }
    for f in &loaded.missing {
        tracing::error!(file = %f.display(), "config file given by --config-path does not exist; ignoring it");
    }
    for key in &loaded.unknown_keys {
        tracing::debug!(key = %key, "unknown config key ignored");
    }
    let settings = loaded.settings;
    if !settings.cluster.enabled && (cli.uri.is_some() || cli.bootstrap.is_some()) {
        tracing::warn!("--uri/--bootstrap are ignored: cluster mode is off (set cluster.enabled: true)");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("qdrant: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let restore = node::node::snapshots::RestoreAtStart {
        storage_snapshot: cli.storage_snapshot,
        snapshots: cli.snapshot,
        force: cli.force_snapshot,
    };
    match runtime.block_on(run(settings, cli.uri, cli.bootstrap, restore)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("qdrant: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(
    settings: Settings,
    uri: Option<String>,
    bootstrap: Option<String>,
    restore: node::node::snapshots::RestoreAtStart,
) -> anyhow::Result<()> {
    let addr: SocketAddr = format!("{}:{}", settings.service.host, settings.service.http_port)
        .parse()
        .map_err(|e| anyhow::anyhow!("service.host/http_port do not form an address: {e}"))?;
    // Bind first: a taken port must fail the start before this peer joins a cluster.
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    let grpc_listener = match settings.service.grpc_port {
        Some(port) => {
            let grpc_addr = SocketAddr::new(addr.ip(), port);
            let l = tokio::net::TcpListener::bind(grpc_addr)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen on {grpc_addr} (service.grpc_port): {e}"))?;
            Some((grpc_addr, l))
        }
        None => None,
    };
    // TLS files are read now, so that a bad certificate fails the start too.
    let rest_tls = node::api::tls::server_config(&settings, &[b"h2", b"http/1.1"])?;
    let grpc_tls = node::api::tls::server_config(&settings, &[b"h2"])?;
    let node = Arc::new(tokio::task::spawn_blocking(move || Node::open(settings)).await??);
    if restore.storage_snapshot.is_some() || !restore.snapshots.is_empty() {
        if node.settings.cluster.enabled {
            anyhow::bail!("--storage-snapshot/--snapshot restore a standalone node; in a cluster recover each collection through the API");
        }
        node.restore_at_start(&restore).await?;
    }
    // Cluster mode: join or resume the cluster, serving the data plane on the peer port too,
    // then let the cluster sync bring the local collections in line with the cluster state.
    if node.settings.cluster.enabled {
        let storage = node.settings.storage.storage_path.clone();
        let shards = tonic::service::Routes::new(node::api::peer::shards::ShardsApi::server(node.clone()));
        let consensus = node::cluster::Consensus::start_with_services(&node.settings, uri, bootstrap, &storage, shards)
            .await
            .map_err(|e| anyhow::anyhow!("cluster start-up failed: {e}"))?;
        node.set_consensus(consensus.clone())?;
        node::node::cluster_reconcile::spawn(node.clone(), consensus);
        node::node::anti_entropy::spawn(node.clone());
    }
    tracing::info!(ms = node.started.elapsed().as_millis() as u64, "start-up complete");

    let app = tower_http::normalize_path::NormalizePathLayer::trim_trailing_slash()
        .layer(node::api::rest::router(node.clone()));
    // One shutdown signal for both servers: whichever API sees it first, both stop.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let stop = Arc::new(stop);
    let until_stopped = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|s| *s).await;
        }
    };
    tokio::spawn({
        let stop = stop.clone();
        async move {
            shutdown_signal().await;
            let _ = stop.send(true);
        }
    });
    let grpc = match grpc_listener {
        Some((grpc_addr, l)) => {
            tracing::info!(addr = %grpc_addr, tls = node.settings.service.enable_tls, "gRPC API listening");
            let serve = node::api::grpc::serve(node.clone(), l, grpc_tls, until_stopped());
            let stop = stop.clone();
            Some(tokio::spawn(async move {
                // A gRPC server that cannot run stops the node too.
                let served = serve.await;
                if served.is_err() {
                    let _ = stop.send(true);
                }
                served
            }))
        }
        None => None,
    };
    let timeouts = node.settings.service.client_timeouts();
    match rest_tls {
        Some(tls) => {
            tracing::info!(%addr, "REST API listening (TLS)");
            let listener = node::api::tls::TlsListener::new(listener, tls)?;
            node::api::rest::serve::serve(listener, app, timeouts, until_stopped()).await
        }
        None => {
            tracing::info!(%addr, "REST API listening");
            node::api::rest::serve::serve(listener, app, timeouts, until_stopped()).await
        }
    }
    if let Some(grpc) = grpc {
        grpc.await??;
    }
    tracing::info!("shutting down");
    if let Some(c) = node.consensus() {
        c.shutdown().await;
    }
    tokio::task::spawn_blocking(move || node.shutdown()).await?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
