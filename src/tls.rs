//! TLS for every listener the process opens (the HTTP API, OTLP/gRPC, OTLP/HTTP), with rustls
//! (the ring provider, the one already in the tree through object_store).
//!
//! - [`Tls`] holds the loaded certificate, key and client CA as ready rustls server configs,
//!   one per application protocol (HTTP/1.1 for the HTTP listeners, h2 for gRPC, told apart by
//!   ALPN). [`Tls::watch`] re-reads the files when their modification time or size changes and
//!   swaps the configs: connections opened afterwards see the new certificate, open ones keep
//!   theirs. A file that fails to load (or a key that does not match its certificate, as while
//!   the two files of a rotation are being replaced one after the other) is logged and the
//!   previous material stays in force; it is tried again at the next check.
//! - [`Tls::incoming`] accepts TCP connections and runs each handshake in a task of its own, so
//!   a slow or failing client never holds up the others; failures are logged with the peer and
//!   never end the accept loop. Handshaken connections come out as [`TlsConnection`]s, which
//!   carry the verified client certificate's names ([`ClientCertificate`]).
//! - The certificate reaches authentication as a request extension: [`serve_http`] puts it in
//!   every HTTP request's extensions, and tonic puts a [`TlsConnection`]'s connect info (the
//!   same type) in every gRPC call's. `tributary_storage::auth::Auth` then decides between it
//!   and a token.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::serve::{IncomingStream, Listener};
use parking_lot::{Mutex, RwLock};
use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ServerConfig, WebPkiClientVerifier};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tonic::codegen::tokio_stream::wrappers::ReceiverStream;
use tonic::codegen::tokio_stream::{Stream, StreamExt};
use tributary_storage::auth::ClientCertificate;

use crate::Error;
use crate::config::{ClientAuth, TlsConfig};

/// How long a client may take to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The application protocol a listener speaks, offered by ALPN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// The HTTP API and OTLP/HTTP (axum serves HTTP/1.1).
    Http1,
    /// OTLP/gRPC (HTTP/2; gRPC clients insist on ALPN `h2`).
    Grpc,
}

/// The certificate, key and client CA in force, shared by every listener. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct Tls {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    cfg: TlsConfig,
    provider: Arc<CryptoProvider>,
    material: RwLock<Arc<Material>>,
    /// The watched files' (modification time, size) when the material in force was loaded.
    stamps: Mutex<Vec<Option<(SystemTime, u64)>>>,
}

/// One load of the files: a server config per protocol.
#[derive(Debug)]
struct Material {
    http1: Arc<ServerConfig>,
    grpc: Arc<ServerConfig>,
}

impl Tls {
    /// Loads the files named by `[server.tls]`; `None` when TLS is off. A file that cannot be
    /// loaded fails startup.
    pub(crate) fn open(cfg: &TlsConfig) -> Result<Option<Self>, Error> {
        if !cfg.enabled() {
            return Ok(None);
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let stamps = stamps(cfg);
        let material = Material::load(cfg, &provider)?;
        Ok(Some(Self {
            inner: Arc::new(Inner {
                cfg: cfg.clone(),
                provider,
                material: RwLock::new(Arc::new(material)),
                stamps: Mutex::new(stamps),
            }),
        }))
    }

    /// The server config for new connections speaking `protocol`.
    fn server_config(&self, protocol: Protocol) -> Arc<ServerConfig> {
        let m = self.inner.material.read();
        match protocol {
            Protocol::Http1 => m.http1.clone(),
            Protocol::Grpc => m.grpc.clone(),
        }
    }

    /// Re-loads the files if any changed since the material in force was loaded; true when it
    /// was replaced. On an error the material in force stays, and the next call tries again.
    pub(crate) fn reload_if_changed(&self) -> Result<bool, Error> {
        let now = stamps(&self.inner.cfg);
        if *self.inner.stamps.lock() == now {
            return Ok(false);
        }
        let material = Material::load(&self.inner.cfg, &self.inner.provider)?;
        *self.inner.material.write() = Arc::new(material);
        *self.inner.stamps.lock() = now;
        Ok(true)
    }

    /// Checks the files every `reload_interval` until `stop` turns true.
    pub(crate) async fn watch(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(self.inner.cfg.reload_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            if *stop.borrow() {
                return;
            }
            match self.reload_if_changed() {
                Ok(true) => tracing::info!("TLS certificate files re-read: new connections use them"),
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "TLS files not re-read; the previous certificate stays in force"),
            }
        }
    }

    /// Accepts connections on `listener` and handshakes each in its own task; the
    /// connections come out of the returned listener. The accept loop ends when that is
    /// dropped.
    pub(crate) fn incoming(&self, listener: TcpListener, protocol: Protocol) -> TlsIncoming {
        let local = listener.local_addr().ok();
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(accept_loop(self.clone(), listener, protocol, tx));
        TlsIncoming { rx, local }
    }
}

impl Material {
    fn load(cfg: &TlsConfig, provider: &Arc<CryptoProvider>) -> Result<Self, Error> {
        let (Some(cert_file), Some(key_file)) = (&cfg.cert_file, &cfg.key_file) else {
            return Err(tls_error(Path::new(""), "cert_file and key_file are both needed"));
        };
        let chain = CertificateDer::pem_file_iter(cert_file)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| tls_error(cert_file, e))?;
        if chain.is_empty() {
            return Err(tls_error(cert_file, "no CERTIFICATE in the file"));
        }
        let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| tls_error(key_file, e))?;
        let key = Arc::new(
            CertifiedKey::from_der(chain, key, provider)
                .map_err(|e| tls_error(key_file, format!("does not go with {}: {e}", cert_file.display())))?,
        );
        let verifier = match &cfg.client_ca_file {
            None => None,
            Some(ca_file) => {
                let mut roots = RootCertStore::empty();
                for cert in CertificateDer::pem_file_iter(ca_file).map_err(|e| tls_error(ca_file, e))? {
                    roots
                        .add(cert.map_err(|e| tls_error(ca_file, e))?)
                        .map_err(|e| tls_error(ca_file, e))?;
                }
                let builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
                let builder = match cfg.client_auth.unwrap_or_default() {
                    ClientAuth::Optional => builder.allow_unauthenticated(),
                    ClientAuth::Required => builder,
                };
                Some(builder.build().map_err(|e| tls_error(ca_file, e))?)
            }
        };
        let config = |alpn: &[u8]| -> Result<Arc<ServerConfig>, Error> {
            let builder = ServerConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map_err(|e| tls_error(cert_file, e))?;
            let builder = match &verifier {
                Some(v) => builder.with_client_cert_verifier(v.clone()),
                None => builder.with_no_client_auth(),
            };
            let mut config = builder.with_cert_resolver(Arc::new(SingleCertAndKey::from(key.clone())));
            config.alpn_protocols = vec![alpn.to_vec()];
            Ok(Arc::new(config))
        };
        Ok(Self {
            http1: config(b"http/1.1")?,
            grpc: config(b"h2")?,
        })
    }
}

fn tls_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Tls(format!("{}: {e}", path.display()))
}

/// The configured files' (modification time, size); `None` for one that cannot be read.
fn stamps(cfg: &TlsConfig) -> Vec<Option<(SystemTime, u64)>> {
    [&cfg.cert_file, &cfg.key_file, &cfg.client_ca_file]
        .into_iter()
        .map(|f| {
            let meta = std::fs::metadata(f.as_ref()?).ok()?;
            Some((meta.modified().ok()?, meta.len()))
        })
        .collect()
}

async fn accept_loop(tls: Tls, listener: TcpListener, protocol: Protocol, tx: mpsc::Sender<TlsConnection>) {
    loop {
        let (tcp, peer) = tokio::select! {
            // Whoever served the connections stopped (shutdown): stop accepting.
            () = tx.closed() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::error!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(tls.server_config(protocol));
        let tx = tx.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => {
                    let client_cert = client_certificate(stream.get_ref().1);
                    let _ = tx
                        .send(TlsConnection {
                            stream,
                            peer,
                            client_cert,
                        })
                        .await;
                }
                // A peer that connects and leaves (a TCP health check, a port scan).
                Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    tracing::debug!(%peer, error = %e, "TLS handshake: the client left");
                }
                Ok(Err(e)) => tracing::warn!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::warn!(%peer, timeout = ?HANDSHAKE_TIMEOUT, "TLS handshake timed out"),
            }
        });
    }
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

/// The names of the client certificate rustls verified on this connection (none when the
/// client sent none): the subject's common name, then the DNS and URI SANs.
fn client_certificate(conn: &rustls::ServerConnection) -> ClientCertificate {
    let Some(der) = conn.peer_certificates().and_then(|c| c.first()) else {
        return ClientCertificate::default();
    };
    let Ok(cert) = webpki::EndEntityCert::try_from(der) else {
        return ClientCertificate::default();
    };
    let mut names: Vec<String> = common_name(cert.subject()).into_iter().collect();
    names.extend(cert.valid_dns_names().map(String::from));
    names.extend(cert.valid_uri_names().map(String::from));
    ClientCertificate::new(names)
}

/// The first common name (OID 2.5.4.3) of a DER `Name`'s contents: a sequence of SETs of
/// `SEQUENCE { type OID, value }`. webpki exposes the subject only as bytes.
fn common_name(subject: &[u8]) -> Option<String> {
    const CN_OID: &[u8] = &[0x55, 0x04, 0x03];
    let mut rdns = subject;
    while let Some((0x31, set, rest)) = der_tlv(rdns) {
        rdns = rest;
        let mut atvs = set;
        while let Some((0x30, atv, rest)) = der_tlv(atvs) {
            atvs = rest;
            let Some((0x06, oid, value)) = der_tlv(atv) else {
                continue;
            };
            if oid != CN_OID {
                continue;
            }
            // UTF8String, PrintableString, IA5String; other string types are not names we map.
            if let Some((0x0c | 0x13 | 0x16, text, _)) = der_tlv(value) {
                return std::str::from_utf8(text).ok().map(String::from);
            }
        }
    }
    None
}

/// One DER tag-length-value at the start of `input`: (tag, contents, the rest).
fn der_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// A handshaken connection and what its handshake verified.
#[derive(Debug)]
pub(crate) struct TlsConnection {
    stream: tokio_rustls::server::TlsStream<TcpStream>,
    peer: SocketAddr,
    client_cert: ClientCertificate,
}

impl AsyncRead for TlsConnection {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConnection {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// tonic puts this in every call's extensions.
impl tonic::transport::server::Connected for TlsConnection {
    type ConnectInfo = ClientCertificate;

    fn connect_info(&self) -> ClientCertificate {
        self.client_cert.clone()
    }
}

/// The handshaken connections of one listener.
#[derive(Debug)]
pub(crate) struct TlsIncoming {
    rx: mpsc::Receiver<TlsConnection>,
    local: Option<SocketAddr>,
}

impl TlsIncoming {
    /// The connections as the stream tonic serves.
    pub(crate) fn into_stream(self) -> impl Stream<Item = Result<TlsConnection, io::Error>> {
        ReceiverStream::new(self.rx).map(Ok)
    }
}

impl Listener for TlsIncoming {
    type Io = TlsConnection;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TlsConnection, SocketAddr) {
        match self.rx.recv().await {
            Some(conn) => {
                let peer = conn.peer;
                (conn, peer)
            }
            // The accept loop only ends once this is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.local
            .ok_or_else(|| io::Error::other("the listener's address is unknown"))
    }
}

/// Serves `app` on `listener`, over TLS when `tls` is set (every request then carries its
/// connection's [`ClientCertificate`] as an extension), until `shutdown` resolves.
pub(crate) async fn serve_http(
    listener: TcpListener,
    tls: Option<&Tls>,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    match tls {
        None => axum::serve(listener, app).with_graceful_shutdown(shutdown).await,
        Some(tls) => {
            axum::serve(tls.incoming(listener, Protocol::Http1), WithClientCert(app))
                .with_graceful_shutdown(shutdown)
                .await
        }
    }
}

/// Makes one service per TLS connection: the app with the connection's certificate added to
/// every request's extensions.
#[derive(Clone, Debug)]
struct WithClientCert(Router);

impl<'a> tower::Service<IncomingStream<'a, TlsIncoming>> for WithClientCert {
    type Response = axum::middleware::AddExtension<Router, ClientCertificate>;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, conn: IncomingStream<'a, TlsIncoming>) -> Self::Future {
        let cert = conn.io().client_cert.clone();
        std::future::ready(Ok(tower::Layer::layer(&axum::Extension(cert), self.0.clone())))
    }
}

#[cfg(test)]
mod tests;
