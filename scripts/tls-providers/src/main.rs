//! In-memory TLS 1.3 (TLS_AES_128_GCM_SHA256, X25519, ECDSA P-256): server-side
//! record encryption + client decryption throughput, and full handshakes per
//! second, for rustls on ring and on aws-lc-rs. One thread, no sockets.
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Instant;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection};

fn only_aes128(mut p: CryptoProvider) -> CryptoProvider {
    p.cipher_suites
        .retain(|s| s.suite() == rustls::CipherSuite::TLS13_AES_128_GCM_SHA256);
    p
}

fn configs(
    p: &CryptoProvider,
    chain: &[CertificateDer<'static>],
    key: &PrivateKeyDer<'static>,
) -> (Arc<ServerConfig>, Arc<ClientConfig>) {
    let s = ServerConfig::builder_with_provider(Arc::new(p.clone()))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain.to_vec(), key.clone_key())
        .unwrap();
    let mut roots = RootCertStore::empty();
    roots.add(chain[0].clone()).unwrap();
    let c = ClientConfig::builder_with_provider(Arc::new(p.clone()))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    (Arc::new(s), Arc::new(c))
}

fn handshake(
    s: &Arc<ServerConfig>,
    c: &Arc<ClientConfig>,
) -> (ServerConnection, ClientConnection, f64) {
    let mut server = ServerConnection::new(s.clone()).unwrap();
    let mut client = ClientConnection::new(c.clone(), "localhost".try_into().unwrap()).unwrap();
    let mut server_s = 0.0;
    let mut buf = Vec::new();
    while client.is_handshaking() || server.is_handshaking() {
        buf.clear();
        while client.wants_write() {
            client.write_tls(&mut buf).unwrap();
        }
        let t = Instant::now();
        let mut rd = &buf[..];
        while !rd.is_empty() {
            server.read_tls(&mut rd).unwrap();
        }
        server.process_new_packets().unwrap();
        buf.clear();
        while server.wants_write() {
            server.write_tls(&mut buf).unwrap();
        }
        server_s += t.elapsed().as_secs_f64();
        let mut rd = &buf[..];
        while !rd.is_empty() {
            client.read_tls(&mut rd).unwrap();
        }
        client.process_new_packets().unwrap();
    }
    (server, client, server_s)
}

fn main() {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let chain = vec![made.cert.der().clone()];
    let key = PrivateKeyDer::try_from(made.signing_key.serialize_der()).unwrap();
    let total: usize = std::env::args()
        .nth(1)
        .map_or(1 << 30, |v| v.parse().unwrap());
    let rounds: usize = std::env::args().nth(2).map_or(3, |v| v.parse().unwrap());
    for round in 0..rounds {
        for (name, p) in [
            ("ring", rustls::crypto::ring::default_provider()),
            ("aws-lc-rs", rustls::crypto::aws_lc_rs::default_provider()),
        ] {
            let p = only_aes128(p);
            let (s, c) = configs(&p, &chain, &key);
            // handshakes
            let n = 500;
            let t = Instant::now();
            let mut server_s = 0.0;
            for _ in 0..n {
                server_s += handshake(&s, &c).2;
            }
            let hs = n as f64 / t.elapsed().as_secs_f64();
            let server_hs = n as f64 / server_s;
            // bulk
            let (mut server, mut client, _) = handshake(&s, &c);
            let chunk = vec![7u8; 65536];
            let mut out = vec![0u8; 65536];
            let mut wire = Vec::with_capacity(1 << 20);
            let (mut enc, mut dec) = (0.0, 0.0);
            let mut sent = 0;
            while sent < total {
                let t = Instant::now();
                server.writer().write_all(&chunk).unwrap();
                wire.clear();
                while server.wants_write() {
                    server.write_tls(&mut wire).unwrap();
                }
                enc += t.elapsed().as_secs_f64();
                let t = Instant::now();
                let mut rd = &wire[..];
                let mut got = 0;
                while !rd.is_empty() {
                    client.read_tls(&mut rd).unwrap();
                    client.process_new_packets().unwrap();
                    loop {
                        match client.reader().read(&mut out) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => got += n,
                        }
                    }
                }
                assert_eq!(got, chunk.len());
                dec += t.elapsed().as_secs_f64();
                sent += chunk.len();
            }
            println!("round {round} {name:9}: server encrypt {:6.0} MB/s ({:.3} s/GiB), client decrypt {:6.0} MB/s; full handshakes {:5.0}/s (client+server), server side alone {:5.0}/s",
                sent as f64 / enc / 1e6, enc * (1u64 << 30) as f64 / sent as f64, sent as f64 / dec / 1e6, hs, server_hs);
        }
    }
}
