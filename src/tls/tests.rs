use std::path::PathBuf;

use rcgen::{CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, SanType};
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

/// A test CA that signs server and client certificates.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and its key, PEM.
struct Pem {
    cert: String,
    key: String,
}

impl Ca {
    fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, "test CA");
        Self {
            issuer: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    /// A certificate for `cn` with these DNS/IP SANs and URI SANs.
    fn issue(&self, cn: &str, sans: &[&str], uris: &[&str]) -> Pem {
        let mut params = CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        for u in uris {
            params.subject_alt_names.push(SanType::URI((*u).try_into().unwrap()));
        }
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Pem {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }
}

struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) {
        // Through a rename, as a rotation would: a reader never sees half a file.
        let tmp = self.path(&format!("{name}.tmp"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(tmp, self.path(name)).unwrap();
    }

    fn server(&self, pem: &Pem) {
        self.write("server.crt", &pem.cert);
        self.write("server.key", &pem.key);
    }

    fn config(&self, client_ca: Option<ClientAuth>) -> TlsConfig {
        TlsConfig {
            cert_file: Some(self.path("server.crt")),
            key_file: Some(self.path("server.key")),
            client_ca_file: client_ca.map(|_| self.path("ca.crt")),
            client_auth: client_ca,
            ..TlsConfig::default()
        }
    }
}

fn setup(ca: &Ca) -> Files {
    let files = Files {
        dir: tempfile::tempdir().unwrap(),
    };
    files.write("ca.crt", &ca.issuer.pem());
    files.server(&ca.issue("server-1", &["localhost", "127.0.0.1"], &[]));
    files
}

/// A client trusting `ca`, presenting `identity` if any.
fn connector(ca: &Ca, identity: Option<&Pem>, alpn: &[u8]) -> tokio_rustls::TlsConnector {
    let mut roots = RootCertStore::empty();
    roots.add(ca.issuer.der().clone()).unwrap();
    let builder = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match identity {
        Some(p) => builder
            .with_client_auth_cert(
                CertificateDer::pem_slice_iter(p.cert.as_bytes())
                    .collect::<Result<_, _>>()
                    .unwrap(),
                PrivateKeyDer::from_pem_slice(p.key.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![alpn.to_vec()];
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// Listens on a free port with `tls`; returns the address and the accepted connections.
async fn listen(tls: &Tls, protocol: Protocol) -> (SocketAddr, TlsIncoming) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (addr, tls.incoming(listener, protocol))
}

/// Handshakes as a client; returns the server's certificate (DER) and the server side.
async fn connect(
    addr: SocketAddr,
    incoming: &mut TlsIncoming,
    connector: &tokio_rustls::TlsConnector,
) -> io::Result<(Vec<u8>, TlsConnection)> {
    let tcp = TcpStream::connect(addr).await?;
    let mut client = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await?;
    // TLS 1.3 reports a refused client certificate only on the first read.
    let server = tokio::time::timeout(Duration::from_secs(5), incoming.accept())
        .await
        .map_err(|_| io::Error::other("no connection accepted"))?
        .0;
    client.write_all(b"ping").await?;
    client.flush().await?;
    let der = client.get_ref().1.peer_certificates().unwrap()[0].to_vec();
    Ok((der, server))
}

fn der_of(pem: &Pem) -> Vec<u8> {
    CertificateDer::from_pem_slice(pem.cert.as_bytes()).unwrap().to_vec()
}

/// The client certificate's CN, DNS SANs and URI SANs reach the server side; ALPN tells the
/// listener's protocol; a failed handshake (plain bytes) does not stop the accept loop.
#[tokio::test]
async fn client_certificate_names_reach_the_connection() {
    let ca = Ca::new();
    let files = setup(&ca);
    let tls = Tls::open(&files.config(Some(ClientAuth::Optional))).unwrap().unwrap();
    let (addr, mut incoming) = listen(&tls, Protocol::Grpc).await;

    // Garbage first: the handshake fails and the loop goes on.
    let mut plain = TcpStream::connect(addr).await.unwrap();
    plain.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer).await;
    assert!(!answer.starts_with(b"HTTP"), "plain HTTP was answered");

    let client = ca.issue("collector-7", &["collector.svc"], &["spiffe://fleet/collector"]);
    let (_, server) = connect(addr, &mut incoming, &connector(&ca, Some(&client), b"h2"))
        .await
        .unwrap();
    assert_eq!(
        tonic::transport::server::Connected::connect_info(&server).names(),
        ["collector-7", "collector.svc", "spiffe://fleet/collector"]
    );
    assert_eq!(server.stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    // Optional: no certificate is fine, and names nobody.
    let (_, server) = connect(addr, &mut incoming, &connector(&ca, None, b"h2"))
        .await
        .unwrap();
    assert!(server.client_cert.names().is_empty());
    // A certificate from another CA is refused.
    let stranger = Ca::new().issue("collector-7", &[], &[]);
    assert!(
        connect(addr, &mut incoming, &connector(&ca, Some(&stranger), b"h2"))
            .await
            .is_err()
    );
}

/// `client_auth = "required"`: no certificate, no connection.
#[tokio::test]
async fn required_client_auth_refuses_clients_without_a_certificate() {
    let ca = Ca::new();
    let files = setup(&ca);
    let tls = Tls::open(&files.config(Some(ClientAuth::Required))).unwrap().unwrap();
    let (addr, mut incoming) = listen(&tls, Protocol::Http1).await;
    assert!(
        connect(addr, &mut incoming, &connector(&ca, None, b"http/1.1"))
            .await
            .is_err()
    );
    let client = ca.issue("grafana", &[], &[]);
    let (_, server) = connect(addr, &mut incoming, &connector(&ca, Some(&client), b"http/1.1"))
        .await
        .unwrap();
    assert_eq!(server.client_cert.names(), ["grafana"]);
}

/// A rotated certificate is used by new connections; a broken file, or a key that does not
/// match its certificate, keeps the certificate in force until the files are whole again.
#[tokio::test]
async fn reload_picks_up_a_new_certificate_and_keeps_the_old_on_a_broken_one() {
    let ca = Ca::new();
    let files = setup(&ca);
    let first = std::fs::read_to_string(files.path("server.crt")).unwrap();
    let tls = Tls::open(&files.config(None)).unwrap().unwrap();
    let (addr, mut incoming) = listen(&tls, Protocol::Http1).await;
    let client = connector(&ca, None, b"http/1.1");
    let first_der = CertificateDer::from_pem_slice(first.as_bytes()).unwrap().to_vec();
    let mut served_now = connect(addr, &mut incoming, &client).await.unwrap().0;
    assert_eq!(served_now, first_der);
    assert!(!tls.reload_if_changed().unwrap(), "nothing changed");

    // A broken certificate file: an error, and the old certificate stays.
    files.write(
        "server.crt",
        "-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n",
    );
    assert!(tls.reload_if_changed().is_err());
    served_now = connect(addr, &mut incoming, &client).await.unwrap().0;
    assert_eq!(served_now, first_der);

    // Half a rotation: the new certificate without its key yet.
    let second = ca.issue("server-2", &["localhost"], &[]);
    files.write("server.crt", &second.cert);
    let err = tls.reload_if_changed().unwrap_err();
    assert!(err.to_string().contains("server.key"), "{err}");
    served_now = connect(addr, &mut incoming, &client).await.unwrap().0;
    assert_eq!(served_now, first_der);

    // The key arrives: the next check loads both.
    files.write("server.key", &second.key);
    assert!(tls.reload_if_changed().unwrap());
    served_now = connect(addr, &mut incoming, &client).await.unwrap().0;
    assert_eq!(served_now, der_of(&second));
}

#[test]
fn startup_fails_on_unreadable_files_and_tls_off_is_none() {
    assert!(Tls::open(&TlsConfig::default()).unwrap().is_none());
    let ca = Ca::new();
    let files = setup(&ca);
    let mut cfg = files.config(None);
    cfg.key_file = Some(files.path("missing.key"));
    let err = Tls::open(&cfg).unwrap_err();
    assert!(err.to_string().contains("missing.key"), "{err}");
}

#[test]
fn common_names_are_read_from_the_subject() {
    let ca = Ca::new();
    let pem = ca.issue("node-1.example", &[], &[]);
    let der = CertificateDer::from_pem_slice(pem.cert.as_bytes()).unwrap();
    let cert = webpki::EndEntityCert::try_from(&der).unwrap();
    assert_eq!(common_name(cert.subject()).as_deref(), Some("node-1.example"));
    assert_eq!(common_name(&[]), None);
    assert_eq!(common_name(&[0x31, 0x85, 0xff]), None, "a length past the end");
}
