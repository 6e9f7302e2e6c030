//! The sink's settings (`[sink]`): where batches go, in which protocol and event shape, how
//! they are cut and compressed, and the credentials and headers every request carries.

use std::num::NonZeroUsize;
use std::time::Duration;

use reqwest::header::HeaderMap;
use url::Url;

use super::auth::Credentials;
pub use super::protocol::Protocol;
use crate::upstream::http::TlsSettings;

/// The shape of each event inside the protocol's envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumString, strum::IntoStaticStr, strum::VariantNames)]
#[strum(serialize_all = "snake_case")]
pub enum Schema {
    /// The normalized event, schema_version 1 (DESIGN.md).
    V1,
    /// OCSF 1.5.0, one event of the closest class per normalized event.
    Ocsf,
}

/// Request body compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumString, strum::IntoStaticStr, strum::VariantNames)]
#[strum(serialize_all = "snake_case")]
pub enum Compression {
    Gzip,
    None,
}

/// A Loki stream label: one of the few low-cardinality event fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumString, strum::IntoStaticStr, strum::VariantNames)]
#[strum(serialize_all = "snake_case")]
pub enum LokiLabel {
    Source,
    Category,
    OrgId,
    Type,
    Action,
    Outcome,
}

/// What only some protocols read; validation refuses a non-default value for a protocol
/// that would ignore it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolOptions {
    /// Splunk HEC index (empty: the token's default index), or the Elasticsearch index or
    /// data stream.
    pub index: String,
    /// Splunk HEC sourcetype.
    pub sourcetype: String,
    /// Loki stream labels, in order.
    pub labels: Vec<LokiLabel>,
    /// Akto's `akto_account_id` on every record.
    pub akto_account_id: String,
    /// Splunk HEC: a batch counts as delivered only once the indexer acknowledges it.
    pub ack: bool,
    /// Splunk HEC with `ack`: how long an unacknowledged batch waits before it is sent again.
    pub ack_timeout: Duration,
}

impl Default for ProtocolOptions {
    fn default() -> Self {
        Self {
            index: String::new(),
            sourcetype: String::new(),
            labels: vec![LokiLabel::Source, LokiLabel::Category, LokiLabel::OrgId],
            akto_account_id: "1000000".to_string(),
            ack: false,
            ack_timeout: Duration::from_secs(300),
        }
    }
}

/// The ingestion service and how batches are cut.
#[derive(Debug, Clone)]
pub struct SinkSettings {
    /// The endpoint, with the protocol's standard path already appended when the configured
    /// URL had none.
    pub url: Url,
    pub protocol: Protocol,
    pub schema: Schema,
    /// The Authorization (or custom) header's scheme and secrets.
    pub credentials: Credentials,
    /// Extra headers sent with every batch (values marked sensitive).
    pub headers: HeaderMap,
    pub compression: Compression,
    /// gzip level, 1 (fastest) to 9 (smallest).
    pub compression_level: u32,
    pub options: ProtocolOptions,
    pub max_batch_events: NonZeroUsize,
    /// Encoded size bound, before compression.
    pub max_batch_bytes: usize,
    pub flush_interval: Duration,
    pub timeout: Duration,
    /// Bytes of encoded events waiting for the sink before pollers are held back.
    pub max_queue_bytes: usize,
    /// Past this size the dead-letter file takes no more lines and delivery pauses.
    pub dead_letter_max_bytes: u64,
    /// Extra trusted roots (`sink.ca_file`) and the client certificate, if any.
    pub tls: TlsSettings,
}
