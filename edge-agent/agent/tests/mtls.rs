//! Mutual TLS on the agent's gRPC port, with certificates made for the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::{TestAgent, settings, sim_backend};
use pice_wire::proto::LoadRequest;
use pice_wire::proto::edge_agent_client::EdgeAgentClient;
use pice_wire::tls::ServerTlsFiles;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

/// A certificate and its key, PEM.
struct Pem {
    cert: String,
    key: String,
}

/// A CA that signs leaf certificates.
struct Authority {
    pem: Pem,
    issuer: Issuer<'static, KeyPair>,
}

impl Authority {
    fn new(name: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        let cert = params.self_signed(&key).unwrap();
        let pem = Pem { cert: cert.pem(), key: key.serialize_pem() };
        Self { pem, issuer: Issuer::new(params, key) }
    }

    fn sign(&self, names: &[&str]) -> Pem {
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>()).unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Pem { cert: cert.pem(), key: key.serialize_pem() }
    }
}

fn write(dir: &Path, name: &str, contents: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

async fn start_mtls_agent(dir: &Path, ca: &Authority) -> TestAgent {
    let server = ca.sign(&["localhost", "127.0.0.1"]);
    let mut settings = settings(1, 1);
    settings.tls = Some(ServerTlsFiles {
        cert: write(dir, "server.pem", &server.cert),
        key: write(dir, "server.key", &server.key),
        client_ca: Some(write(dir, "ca.pem", &ca.pem.cert)),
    });
    TestAgent::start(settings, sim_backend(1.0)).await
}

/// Connects and asks for the load; `Err` if the TLS handshake or the call fails.
async fn load_over_tls(agent: &TestAgent, ca: &Authority, client: Option<&Pem>) -> Result<u32, String> {
    let mut tls =
        ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&ca.pem.cert)).domain_name("localhost");
    if let Some(client) = client {
        tls = tls.identity(Identity::from_pem(&client.cert, &client.key));
    }
    let endpoint =
        Channel::from_shared(format!("https://{}", agent.grpc_addr)).unwrap().tls_config(tls).unwrap();
    let channel = endpoint.connect().await.map_err(|e| format!("connect: {e:?}"))?;
    let report =
        EdgeAgentClient::new(channel).load(LoadRequest {}).await.map_err(|e| format!("load: {e:?}"))?;
    Ok(report.into_inner().slots)
}

#[tokio::test]
async fn a_client_with_a_certificate_signed_by_the_ca_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Authority::new("pice test CA");
    let agent = start_mtls_agent(dir.path(), &ca).await;
    let client = ca.sign(&["pice-gateway"]);
    assert_eq!(load_over_tls(&agent, &ca, Some(&client)).await, Ok(1));
}

#[tokio::test]
async fn a_client_without_a_certificate_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Authority::new("pice test CA");
    let agent = start_mtls_agent(dir.path(), &ca).await;
    let refused = load_over_tls(&agent, &ca, None).await.unwrap_err();
    assert!(refused.contains("CertificateRequired"), "{refused}");
}

#[tokio::test]
async fn a_client_certificate_from_another_ca_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Authority::new("pice test CA");
    let agent = start_mtls_agent(dir.path(), &ca).await;
    let stranger = Authority::new("someone else").sign(&["pice-gateway"]);
    let refused = load_over_tls(&agent, &ca, Some(&stranger)).await.unwrap_err();
    assert!(refused.contains("UnknownCA"), "{refused}");
}

#[tokio::test]
async fn a_plaintext_client_gets_nothing_from_a_tls_agent() {
    let dir = tempfile::tempdir().unwrap();
    let agent = start_mtls_agent(dir.path(), &Authority::new("pice test CA")).await;
    let result = async {
        let mut client = EdgeAgentClient::connect(format!("http://{}", agent.grpc_addr))
            .await
            .map_err(|e| e.to_string())?;
        client.load(LoadRequest {}).await.map_err(|e| e.to_string())
    };
    assert!(result.await.is_err());
}
