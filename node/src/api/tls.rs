//! TLS of the public APIs (REST and gRPC), configured as Qdrant configures it:
//! `service.enable_tls` with `tls.cert`/`tls.key` (read again every `tls.cert_ttl` seconds), and
//! `service.verify_https_client_certificate` requiring client certificates signed by
//! `tls.ca_cert`.
//!
//! Connections are accepted on one task and their handshakes run on tasks of their own, bounded
//! in time, so a client that connects and says nothing cannot hold up anyone else's connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use parking_lot::RwLock;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::settings::{Settings, TlsConfig};

/// How long a client may take to complete its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The rustls configuration of the public APIs, `None` when TLS is off. `alpn` lists the
/// protocols the API speaks (`h2` for gRPC; `h2` and `http/1.1` for REST).
pub fn server_config(settings: &Settings, alpn: &[&[u8]]) -> anyhow::Result<Option<Arc<ServerConfig>>> {
    if !settings.service.enable_tls {
        return Ok(None);
    }
    let tls = &settings.tls;
    let client_ca = if settings.service.verify_https_client_certificate {
        let ca = tls
            .ca_cert
            .as_ref()
            .ok_or_else(|| anyhow!("service.verify_https_client_certificate needs tls.ca_cert"))?;
        Some(read_ca(ca)?)
    } else {
        None
    };
    build_server_config(tls, client_ca, alpn).map(Some)
}

/// The rustls configuration of the peer port with `cluster.p2p.enable_tls`: the node's
/// certificate, and peers must present one signed by `tls.ca_cert`. `None` when peer TLS is off.
pub fn peer_server_config(settings: &Settings) -> anyhow::Result<Option<Arc<ServerConfig>>> {
    if !settings.cluster.p2p.enable_tls {
        return Ok(None);
    }
    let tls = &settings.tls;
    build_server_config(tls, Some(peer_ca(tls)?), &[b"h2"]).map(Some)
}

/// A server configuration serving `tls.cert`/`tls.key` (read again every `tls.cert_ttl`
/// seconds), requiring client certificates signed by `client_ca` when given, speaking `alpn`.
fn build_server_config(
    tls: &TlsConfig,
    client_ca: Option<RootCertStore>,
    alpn: &[&[u8]],
) -> anyhow::Result<Arc<ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certificate = ReloadingCertificate::load(tls, provider.clone())?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let builder = match client_ca {
        Some(ca) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(ca), provider)
                .build()
                .map_err(|e| anyhow!("tls.ca_cert: {e}"))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(Arc::new(certificate));
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// How this node calls its peers with `cluster.p2p.enable_tls`: it verifies them against
/// `tls.ca_cert` and presents `tls.cert`, read again from disk every `tls.cert_ttl` seconds like
/// the server certificate. Connections made before a rotation keep the certificate they started
/// with; new ones present the fresh one.
#[derive(Debug)]
pub struct PeerClientTls {
    tls: TlsConfig,
    ttl: Option<Duration>,
    current: parking_lot::Mutex<PeerClientFiles>,
}

/// The files a peer client configuration was made from, and when they were read.
#[derive(Debug)]
struct PeerClientFiles {
    pem: [Vec<u8>; 3],
    config: tonic::transport::ClientTlsConfig,
    read_at: Instant,
}

impl PeerClientTls {
    /// `None` when peer TLS is off; an error names an unreadable or malformed file.
    pub fn load(settings: &Settings) -> anyhow::Result<Option<PeerClientTls>> {
        if !settings.cluster.p2p.enable_tls {
            return Ok(None);
        }
        let tls = settings.tls.clone();
        let files = PeerClientFiles::read(&tls)?;
        Ok(Some(PeerClientTls {
            ttl: tls.cert_ttl.filter(|s| *s > 0).map(Duration::from_secs),
            tls,
            current: parking_lot::Mutex::new(files),
        }))
    }

    /// The configuration for a new connection.
    pub fn config(&self) -> tonic::transport::ClientTlsConfig {
        self.current.lock().config.clone()
    }

    /// Reads the files again once the loaded ones are `tls.cert_ttl` old; true when they changed
    /// since the previous call (connections cached with the old ones are best replaced).
    /// Cheap when no reload is due: it is asked on every peer call.
    pub fn rotated(&self) -> bool {
        let Some(ttl) = self.ttl else {
            return false;
        };
        let mut current = self.current.lock();
        if current.read_at.elapsed() < ttl {
            return false;
        }
        match PeerClientFiles::read(&self.tls) {
            Ok(fresh) if fresh.pem != current.pem => {
                tracing::info!(cert = %self.tls.cert.display(), "peer client TLS certificate reloaded from disk");
                *current = fresh;
                true
            }
            Ok(_) => {
                current.read_at = Instant::now();
                false
            }
            Err(e) => {
                tracing::warn!(error = %e, "peer client TLS reload failed; keeping the previous certificate");
                current.read_at = Instant::now();
                false
            }
        }
    }
}

impl PeerClientFiles {
    fn read(tls: &TlsConfig) -> anyhow::Result<PeerClientFiles> {
        let read = |path: &std::path::Path, what: &str| {
            std::fs::read(path).map_err(|e| anyhow!("{what}: cannot read {}: {e}", path.display()))
        };
        let ca_path = peer_ca_path(tls)?;
        let ca = read(ca_path, "tls.ca_cert")?;
        parse_ca(&ca, ca_path)?; // well-formed, or the start fails with its reason
        let (cert, key) = (read(&tls.cert, "tls.cert")?, read(&tls.key, "tls.key")?);
        let config = tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(&ca))
            .identity(tonic::transport::Identity::from_pem(&cert, &key));
        Ok(PeerClientFiles {
            pem: [ca, cert, key],
            config,
            read_at: Instant::now(),
        })
    }
}

/// The CA peers are verified against (`tls.ca_cert`, required with peer TLS).
fn peer_ca(tls: &TlsConfig) -> anyhow::Result<RootCertStore> {
    read_ca(peer_ca_path(tls)?)
}

/// `tls.ca_cert`, which peer TLS requires.
fn peer_ca_path(tls: &TlsConfig) -> anyhow::Result<&std::path::Path> {
    tls.ca_cert
        .as_deref()
        .ok_or_else(|| anyhow!("cluster.p2p.enable_tls needs tls.ca_cert (the CA peers are verified against)"))
}

/// The certificates of the PEM file `ca` (`tls.ca_cert`).
fn read_ca(ca: &std::path::Path) -> anyhow::Result<RootCertStore> {
    let pem = std::fs::read(ca).map_err(|e| anyhow!("tls.ca_cert: cannot read {}: {e}", ca.display()))?;
    parse_ca(&pem, ca)
}

/// The certificates of `pem`, the contents of the file `ca`.
fn parse_ca(pem: &[u8], ca: &std::path::Path) -> anyhow::Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| anyhow!("tls.ca_cert: {}: {e}", ca.display()))?;
        roots
            .add(cert)
            .map_err(|e| anyhow!("tls.ca_cert: {}: {e}", ca.display()))?;
    }
    if roots.is_empty() {
        return Err(anyhow!("tls.ca_cert: no certificate in {}", ca.display()));
    }
    Ok(roots)
}

/// Reads `tls.cert` and `tls.key` into a certificate rustls can serve.
fn read_certificate(tls: &TlsConfig, provider: &CryptoProvider) -> anyhow::Result<CertifiedKey> {
    let certs = CertificateDer::pem_file_iter(&tls.cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow!("tls.cert: cannot read certificates from {}: {e}", tls.cert.display()))?;
    if certs.is_empty() {
        return Err(anyhow!("tls.cert: no certificate in {}", tls.cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(&tls.key)
        .map_err(|e| anyhow!("tls.key: cannot read a private key from {}: {e}", tls.key.display()))?;
    CertifiedKey::from_der(certs, key, provider)
        .map_err(|e| anyhow!("tls.cert/tls.key do not form a usable certificate: {e}"))
}

/// The server certificate, read again from `tls.cert`/`tls.key` once it is `tls.cert_ttl`
/// seconds old (as Qdrant: certificates rotated on disk, by cert-manager say, are served without
/// a restart). A rotation caught half-written keeps the previous certificate until the next try.
#[derive(Debug)]
struct ReloadingCertificate {
    tls: TlsConfig,
    provider: Arc<CryptoProvider>,
    ttl: Option<Duration>,
    current: RwLock<(Arc<CertifiedKey>, Instant)>,
}

impl ReloadingCertificate {
    fn load(tls: &TlsConfig, provider: Arc<CryptoProvider>) -> anyhow::Result<ReloadingCertificate> {
        let certificate = read_certificate(tls, &provider)?;
        Ok(ReloadingCertificate {
            tls: tls.clone(),
            ttl: tls.cert_ttl.filter(|s| *s > 0).map(Duration::from_secs),
            provider,
            current: RwLock::new((Arc::new(certificate), Instant::now())),
        })
    }

    fn certificate(&self) -> Arc<CertifiedKey> {
        let Some(ttl) = self.ttl else {
            return self.current.read().0.clone();
        };
        {
            let current = self.current.read();
            if current.1.elapsed() < ttl {
                return current.0.clone();
            }
        }
        let mut slot = self.current.write();
        if slot.1.elapsed() < ttl {
            return slot.0.clone(); // another handshake reloaded it meanwhile
        }
        match read_certificate(&self.tls, &self.provider) {
            Ok(fresh) => {
                if fresh.cert != slot.0.cert {
                    tracing::info!(cert = %self.tls.cert.display(), "TLS certificate reloaded from disk");
                }
                *slot = (Arc::new(fresh), Instant::now());
            }
            Err(e) => {
                tracing::warn!(error = %e, "TLS certificate reload failed; serving the previous one");
                slot.1 = Instant::now();
            }
        }
        slot.0.clone()
    }
}

impl ResolvesServerCert for ReloadingCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.certificate())
    }
}

/// TLS connections accepted on `listener`, handshaken concurrently.
pub struct TlsListener {
    connections: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    pub fn new(listener: TcpListener, config: Arc<ServerConfig>) -> std::io::Result<TlsListener> {
        let local = listener.local_addr()?;
        let (tx, connections) = mpsc::channel(64);
        let acceptor = TlsAcceptor::from(config);
        tokio::spawn(async move {
            loop {
                let (tcp, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors and the like: wait instead of spinning.
                        tracing::warn!(error = %e, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if tx.is_closed() {
                    return;
                }
                let _ = tcp.set_nodelay(true);
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let _ = tx.send((stream, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener { connections, local })
    }

    /// The next connection, `None` once the accept task has stopped.
    pub async fn next(&mut self) -> Option<(TlsStream<TcpStream>, SocketAddr)> {
        self.connections.recv().await
    }

    /// The connections as a stream, the form tonic serves.
    pub fn into_stream(self) -> impl futures::Stream<Item = std::io::Result<TlsStream<TcpStream>>> {
        futures::stream::unfold(self, |mut l| async move { l.next().await.map(|(s, _)| (Ok(s), l)) })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.next().await {
            Some(connection) => connection,
            // The accept task only ends when this listener is gone, so this never resolves.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
