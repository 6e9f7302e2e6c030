//! The one HTTP client builder every outbound connection uses: rustls, our user agent, and
//! redirects off (the compliance download follows its 307 by hand so the bearer token never
//! reaches the signed URL's host). Two timeout shapes: a total per request (the sink, whose
//! answers are small), or a connect timeout and a per-read timeout (the upstream APIs, whose
//! bodies — above all compliance log files — may take far longer than any one read). Each
//! service may add its own trusted roots (`<section>.ca_file`) and, for the sink, a client
//! certificate; `HTTPS_PROXY` / `NO_PROXY` are honoured as reqwest reads them.

use std::time::Duration;

/// `openai-audit-ingest/<version>`.
pub const USER_AGENT: &str = concat!(env!("CARGO_PKG_NAME"), "/", env!("CARGO_PKG_VERSION"));

/// The longest a connection attempt may take, whatever the configured timeout.
const MAX_CONNECT: Duration = Duration::from_secs(10);

/// What one service's connections trust beyond the system's roots, and who they say they
/// are: parsed (and proven to build a client) when the configuration is validated.
#[derive(Debug, Clone, Default)]
pub struct TlsSettings {
    /// Certificates of `<section>.ca_file`, trusted besides the system's roots (a private CA,
    /// a TLS-inspecting proxy).
    pub extra_roots: Vec<reqwest::Certificate>,
    /// `sink.client_cert_file` + `sink.client_key_file`, presented when the server asks.
    pub identity: Option<reqwest::Identity>,
}

fn builder(timeout: Duration, tls: &TlsSettings) -> reqwest::ClientBuilder {
    let mut builder = reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .connect_timeout(timeout.min(MAX_CONNECT))
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(Duration::from_secs(60));
    if !tls.extra_roots.is_empty() {
        builder = builder.tls_certs_merge(tls.extra_roots.iter().cloned());
    }
    if let Some(identity) = &tls.identity {
        builder = builder.identity(identity.clone());
    }
    builder
}

/// A client with `timeout` for the whole of each request, body included.
pub fn client(timeout: Duration, tls: &TlsSettings) -> Result<reqwest::Client, reqwest::Error> {
    builder(timeout, tls).timeout(timeout).build()
}

/// A client that gives up when connecting takes longer than `read_timeout` (at most 10 s) or
/// when no bytes arrive for `read_timeout` (waiting for the answer, or between two reads of
/// its body). There is no total: a large body that keeps arriving is never cut off here;
/// callers that need an overall bound (the compliance download's budget) set their own.
pub fn streaming_client(read_timeout: Duration, tls: &TlsSettings) -> Result<reqwest::Client, reqwest::Error> {
    builder(read_timeout, tls).read_timeout(read_timeout).build()
}
