//! What a normalizer knows about a record that the record itself does not say.

/// Facts about where a record was fetched, shared by every normalizer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    /// The organization the record was fetched for; audit-log records do not name it, yet
    /// event ids must stay unique when one daemon ships several organizations.
    pub org_id: Option<String>,
}
