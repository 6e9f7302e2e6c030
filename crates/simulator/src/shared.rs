//! [`Shared`]: the state the API endpoints hold, built once by the server. It knows the
//! organization, the fault switches and the receiver, and no endpoint, so none loops back.

use std::sync::Arc;
use std::time::Duration;

use url::Url;

use super::faults::Faults;
use super::org::Org;
use super::receiver::Receiver;

/// State the Admin API, Compliance and control endpoints share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub org: Org,
    pub faults: Faults,
    /// Behind its own `Arc`: the receiver's routes hold it alone (`receiver::routes`).
    pub receiver: Arc<Receiver>,
    pub admin_key: String,
    pub compliance_key: String,
    /// Fixed at seeding; kept outside the org lock so accessors can hand out `&str`.
    pub org_id: String,
    pub workspace_id: String,
    /// `http://127.0.0.1:PORT`, for absolute `Location` headers.
    pub base: Url,
    /// Signs download URLs; random per run so URLs from an old run never verify.
    pub signing_secret: String,
    pub signed_url_ttl: Duration,
    /// Audit-log pages in indented JSON (`SimConfig::indented_pages`).
    pub indented_pages: bool,
}
