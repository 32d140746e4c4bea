//! HTTPS for the demo server: `--tls-cert FILE --tls-key FILE` (PEM), or
//! `--tls-self-signed`, which makes a certificate for `localhost` and
//! `127.0.0.1` at start and writes it to a temporary file for
//! `curl --cacert`.
//!
//! rustls on the `ring` provider (which `object_store` builds anyway; see
//! BENCHMARKS.md, "TLS", for the provider's measure), TLS 1.3 and 1.2 with
//! rustls's safe defaults, or the suites `--tls-ciphers` lists. ALPN offers
//! `h2` and `http/1.1`; the negotiated protocol picks hyper's HTTP/2 or
//! HTTP/1.1 (without ALPN hyper-util's auto builder tells them apart by the
//! HTTP/2 preface, as on plain HTTP).
//!
//! The handshake runs in the connection's own task, never in the accept loop,
//! and has `--tls-handshake-timeout` to finish. A failed handshake (plain HTTP
//! or garbage sent to the port, a client that does not trust the certificate,
//! one that says nothing) is logged once, with the peer, and closes that
//! connection only.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// The TLS flags of the demo server.
#[derive(Debug, clap::Args)]
pub(crate) struct TlsArgs {
    /// Serve HTTPS with this certificate chain (PEM, leaf first); needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,

    /// Serve HTTPS with a certificate for localhost and 127.0.0.1 made at
    /// start (written to a temporary file for curl --cacert).
    #[arg(long, conflicts_with = "tls_cert")]
    tls_self_signed: bool,

    /// TLS cipher suites allowed, in rustls's names, comma-separated, e.g.
    /// TLS13_AES_128_GCM_SHA256 (only TLS 1.3 suites: only TLS 1.3). Default:
    /// rustls's (TLS 1.3 and 1.2, AES-GCM and ChaCha20-Poly1305).
    #[arg(long, value_name = "LIST")]
    tls_ciphers: Option<String>,

    /// Seconds a client has to finish the TLS handshake.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    tls_handshake_timeout: f64,
}

/// What the accept loop needs to turn a TCP connection into a TLS one.
#[derive(Clone)]
pub(crate) struct Tls {
    acceptor: TlsAcceptor,
    timeout: Duration,
    /// The certificate of `--tls-self-signed`, removed when the server stops.
    self_signed: Option<Arc<tempfile::TempPath>>,
}

impl Tls {
    /// The TLS setup the flags ask for, or `None` for plain HTTP.
    pub(crate) fn from_args(args: &TlsArgs) -> Result<Option<Self>, String> {
        let (chain, key, self_signed) = match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => {
                let chain = CertificateDer::pem_file_iter(cert)
                    .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                    .map_err(|e| format!("--tls-cert {}: {e}", cert.display()))?;
                if chain.is_empty() {
                    return Err(format!("--tls-cert {}: no certificate", cert.display()));
                }
                let key = PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| format!("--tls-key {}: {e}", key.display()))?;
                (chain, key, None)
            }
            _ if args.tls_self_signed => {
                let (chain, key, path) = self_signed()?;
                (chain, key, Some(Arc::new(path)))
            }
            _ => return Ok(None),
        };
        let provider = provider(args.tls_ciphers.as_deref())?;
        let versions: Vec<_> = rustls::ALL_VERSIONS
            .iter()
            .copied()
            .filter(|v| provider.cipher_suites.iter().any(|s| s.version() == *v))
            .collect();
        let mut config = ServerConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(&versions)
            .map_err(|e| format!("tls: {e}"))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| format!("tls: {e}"))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Some(Self {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            timeout: Duration::try_from_secs_f64(args.tls_handshake_timeout)
                .map_err(|e| format!("--tls-handshake-timeout: {e}"))?,
            self_signed,
        }))
    }

    /// The TLS handshake of one connection, within the handshake timeout. A
    /// failure is logged (once, with the peer) and gives `None`: the stream is
    /// dropped, which closes the connection.
    pub(crate) async fn handshake<IO>(&self, stream: IO, peer: SocketAddr) -> Option<Accepted<IO>>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        match tokio::time::timeout(self.timeout, self.acceptor.accept(stream)).await {
            Ok(Ok(stream)) => {
                let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
                Some(Accepted { stream, h2 })
            }
            Ok(Err(e)) => {
                eprintln!("tls: {peer}: handshake failed: {}", reason(&e));
                None
            }
            Err(_) => {
                eprintln!(
                    "tls: {peer}: no handshake within {:.1} s, closed",
                    self.timeout.as_secs_f64()
                );
                None
            }
        }
    }

    /// `curl`, with `--cacert` when the certificate is self-signed.
    pub(crate) fn curl(&self) -> String {
        match &self.self_signed {
            Some(path) => format!("curl --cacert {}", path.display()),
            None => "curl".to_owned(),
        }
    }

    /// A line for the banner: what certificate, and how to trust it.
    pub(crate) fn describe(&self) -> String {
        match &self.self_signed {
            Some(path) => format!(
                "HTTPS (ALPN h2, http/1.1) with a self-signed certificate for localhost and \
                 127.0.0.1, in {} (hand it to clients: curl --cacert, wget --ca-certificate)",
                path.display()
            ),
            None => "HTTPS (ALPN h2, http/1.1)".to_owned(),
        }
    }
}

/// A finished handshake: the stream, and whether ALPN chose HTTP/2.
pub(crate) struct Accepted<IO> {
    pub(crate) stream: TlsStream<IO>,
    pub(crate) h2: bool,
}

/// What went wrong in a handshake, in words: the usual mistake (plain HTTP on
/// the HTTPS port) said plainly.
fn reason(error: &std::io::Error) -> String {
    let rustls = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match rustls {
        Some(rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType)) => {
            "not TLS (plain HTTP sent to the HTTPS port?)".to_owned()
        }
        _ => error.to_string(),
    }
}

/// ring's provider with the suites `--tls-ciphers` allows.
fn provider(ciphers: Option<&str>) -> Result<CryptoProvider, String> {
    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(list) = ciphers {
        let wanted: Vec<&str> = list.split(',').map(str::trim).collect();
        let all = std::mem::take(&mut provider.cipher_suites);
        for name in &wanted {
            let found = all.iter().find(|s| {
                s.suite()
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
            });
            match found {
                Some(suite) => provider.cipher_suites.push(*suite),
                None => {
                    let known: Vec<_> = all.iter().filter_map(|s| s.suite().as_str()).collect();
                    return Err(format!(
                        "--tls-ciphers: unknown suite {name:?}; known: {}",
                        known.join(", ")
                    ));
                }
            }
        }
    }
    Ok(provider)
}

/// A certificate for `localhost` and `127.0.0.1`, its key, and the file its
/// PEM was written to.
fn self_signed() -> Result<
    (
        Vec<CertificateDer<'static>>,
        PrivateKeyDer<'static>,
        tempfile::TempPath,
    ),
    String,
> {
    let made = rcgen::generate_simple_self_signed(["localhost".to_owned(), "127.0.0.1".to_owned()])
        .map_err(|e| format!("--tls-self-signed: {e}"))?;
    let file = tempfile::Builder::new()
        .prefix("tower-range-serve-cert-")
        .suffix(".pem")
        .tempfile()
        .and_then(|mut file| {
            std::io::Write::write_all(&mut file, made.cert.pem().as_bytes())?;
            Ok(file.into_temp_path())
        })
        .map_err(|e| format!("--tls-self-signed: cannot write the certificate: {e}"))?;
    let key = PrivateKeyDer::try_from(made.signing_key.serialize_der())
        .map_err(|e| format!("--tls-self-signed: {e}"))?;
    Ok((vec![made.cert.der().clone()], key, file))
}
