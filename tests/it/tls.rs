//! TLS to the ingestion service with a private CA and a client certificate: the simulated
//! receiver behind a TLS front that trusts only the test CA's clients (tests/fixtures/tls).

use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig, crypto};

use crate::helpers::TestApp;
use crate::helpers::binary::describe;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tls")
        .join(name)
}

fn fixture_text(name: &str) -> String {
    fixture(name).display().to_string()
}

/// Serves TLS on a loopback port (server certificate for `localhost`, client certificates
/// of the test CA required) and passes each connection's bytes to `backend`.
async fn tls_front(backend: std::net::SocketAddr) -> u16 {
    let provider = Arc::new(crypto::aws_lc_rs::default_provider());
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(fixture("ca.pem")).expect("ca.pem") {
        roots.add(cert.expect("a CA certificate")).expect("added");
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .expect("client verifier");
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(fixture("server.pem"))
        .expect("server.pem")
        .map(|c| c.expect("a certificate"))
        .collect();
    let key = PrivateKeyDer::from_pem_file(fixture("server.key")).expect("server.key");
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .expect("server config");
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut plain) = TcpStream::connect(backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread")]
async fn a_private_ca_and_a_client_certificate_reach_a_mutual_tls_sink() {
    let app = TestApp::builder().history(40).start().await;
    let port = tls_front(app.sim().local_addr()).await;
    let url = format!("https://localhost:{port}/receiver/events");
    let (ca, cert, key) = (
        fixture_text("ca.pem"),
        fixture_text("client.pem"),
        fixture_text("client.key"),
    );
    let mtls = [
        ("OAI_INGEST__SINK__URL", url.as_str()),
        ("OAI_INGEST__SINK__CA_FILE", ca.as_str()),
        ("OAI_INGEST__SINK__CLIENT_CERT_FILE", cert.as_str()),
        ("OAI_INGEST__SINK__CLIENT_KEY_FILE", key.as_str()),
    ];

    // Without the CA the server is not trusted; without the client certificate the server
    // refuses the handshake: nothing is delivered either way.
    let without_ca = &mtls[..1].iter().chain(&mtls[2..]).copied().collect::<Vec<_>>();
    for (what, env) in [
        ("no ca_file", without_ca.as_slice()),
        ("no client certificate", &mtls[..2]),
    ] {
        let out = app.run_binary(&["once", "--deadline", "4s"], env).await;
        assert_eq!(out.status.code(), Some(1), "{what}: {}", describe(&out));
        assert!(app.receiver().ids().is_empty(), "{what}");
    }

    let out = app.run_binary(&["once"], &mtls).await;
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(
        app.received().0,
        app.expected_audit_ids(),
        "everything arrived over mutual TLS"
    );

    // `check` speaks the same TLS.
    let out = app.run_binary(&["check"], &mtls).await;
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
}
