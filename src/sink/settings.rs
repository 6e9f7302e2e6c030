//! The sink's settings (`[sink]`): where batches go, how they are encoded and cut, and the
//! credentials and headers every request carries.

use std::num::NonZeroUsize;
use std::time::Duration;

use reqwest::header::HeaderMap;
use secrecy::SecretString;
use url::Url;

/// Body encoding of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumString, strum::IntoStaticStr, strum::VariantNames)]
#[strum(serialize_all = "snake_case")]
pub enum SinkFormat {
    /// One JSON event per line, `application/x-ndjson`.
    Ndjson,
    /// One JSON array, `application/json`.
    Json,
}

/// Request body compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumString, strum::IntoStaticStr, strum::VariantNames)]
#[strum(serialize_all = "snake_case")]
pub enum Compression {
    Gzip,
    None,
}

/// The ingestion service and how batches are cut.
#[derive(Debug, Clone)]
pub struct SinkSettings {
    pub url: Url,
    pub format: SinkFormat,
    pub auth_token: Option<SecretString>,
    /// Extra headers sent with every batch (values marked sensitive).
    pub headers: HeaderMap,
    pub compression: Compression,
    pub max_batch_events: NonZeroUsize,
    /// Encoded size bound, before compression.
    pub max_batch_bytes: usize,
    pub flush_interval: Duration,
    pub timeout: Duration,
    /// Bytes of encoded events waiting for the sink before pollers are held back.
    pub max_queue_bytes: usize,
}
