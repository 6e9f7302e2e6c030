//! Why an upstream record could not become an event.

/// A record that lacks what every event needs. Callers branch on it (dead-letter the record,
/// count it), so it names the field rather than wrapping a parser message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NormalizeError {
    #[error("record is not a JSON object")]
    NotAnObject,
    #[error("record {record_id} has no `{field}`", record_id = display_id(record_id))]
    MissingField {
        field: &'static str,
        record_id: Option<String>,
    },
    #[error("record {record_id} has a `{field}` that is not {expected}", record_id = display_id(record_id))]
    WrongType {
        field: &'static str,
        expected: &'static str,
        record_id: Option<String>,
    },
    #[error("record {record_id} has a `{field}` out of range: {value}", record_id = display_id(record_id))]
    OutOfRange {
        field: &'static str,
        value: String,
        record_id: Option<String>,
    },
}

impl NormalizeError {
    /// A stable label for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NotAnObject => "not_an_object",
            Self::MissingField { .. } => "missing_field",
            Self::WrongType { .. } => "wrong_type",
            Self::OutOfRange { .. } => "out_of_range",
        }
    }

    /// The field at fault, when one field is.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::MissingField { field, .. } | Self::WrongType { field, .. } | Self::OutOfRange { field, .. } => {
                Some(field)
            }
            Self::NotAnObject => None,
        }
    }
}

fn display_id(record_id: &Option<String>) -> String {
    match record_id {
        Some(id) => format!("`{id}`"),
        None => "(no id)".to_string(),
    }
}
