//! Event-type mapping tables: an upstream type → category, action, outcome and target type.
//!
//! The tables are data (`*.tsv` beside this file, one per source) so that reviewing a mapping
//! means reading a table, not code. Every source uses the same format and the same loader:
//!
//! ```text
//! # comment
//! type<TAB>category<TAB>action<TAB>outcome<TAB>target_type     ("-" = no target)
//! ```

use std::borrow::Cow;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::LazyLock;

use super::Outcome;

/// Every category a table may name. `other` is what a type missing from every table gets;
/// tables may use it for a documented type that fits nowhere else.
pub const CATEGORIES: &[&str] = &[
    "authentication",
    "identity",
    "organization",
    "credential",
    "sso",
    "certificate",
    "network",
    "access_control",
    "billing",
    "inventory",
    // ChatGPT Compliance Logs Platform families.
    "conversation",
    "app",
    "agent",
    "codex",
    "other",
];

/// The category, action, outcome and target type of one event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mapping {
    /// Coarse family, one of [`CATEGORIES`].
    pub category: &'static str,
    /// Short verb (`created`, `login`, `bound`, …).
    pub action: &'static str,
    pub outcome: Outcome,
    /// What kind of thing the event acts on; `None` when nothing is acted on (a login).
    pub target_type: Option<&'static str>,
}

/// Why a table row was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    #[error("line {line}: expected 5 tab-separated columns, found {found}")]
    Columns { line: usize, found: usize },
    #[error("line {line}: column `{column}` is empty or not a lowercase identifier")]
    BadValue { line: usize, column: &'static str },
    #[error("line {line}: category `{category}` is not in the vocabulary")]
    Category { line: usize, category: String },
    #[error("line {line}: outcome `{outcome}` is not success, failure or unknown")]
    Outcome { line: usize, outcome: String },
    #[error("line {line}: type `{event_type}` is already mapped on line {first}")]
    Duplicate {
        line: usize,
        first: usize,
        event_type: String,
    },
}

/// A parsed table, looked up by upstream type: once per event, so hashed with foldhash rather
/// than SipHash (the table is fixed once built; a lookup inserts nothing).
#[derive(Debug, Default)]
pub struct MappingTable {
    rows: HashMap<&'static str, (usize, Mapping), foldhash::fast::RandomState>,
}

impl MappingTable {
    /// Parses a table, keeping every good row and reporting every bad one: a bad row loses
    /// only its own mapping, and tests insist the shipped tables report nothing.
    pub fn parse(text: &'static str) -> (Self, Vec<TableError>) {
        let mut table = Self::default();
        let mut errors = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            if raw.trim().is_empty() || raw.starts_with('#') {
                continue;
            }
            match parse_row(line, raw) {
                Ok((event_type, mapping)) => match table.rows.entry(event_type) {
                    Entry::Occupied(first) => errors.push(TableError::Duplicate {
                        line,
                        first: first.get().0,
                        event_type: event_type.to_string(),
                    }),
                    Entry::Vacant(slot) => {
                        slot.insert((line, mapping));
                    }
                },
                Err(error) => errors.push(error),
            }
        }
        (table, errors)
    }

    /// The mapping of `event_type`, if the table documents it.
    pub fn get(&self, event_type: &str) -> Option<&Mapping> {
        self.rows.get(event_type).map(|(_, mapping)| mapping)
    }

    /// Every type the table maps, in no particular order.
    pub fn types(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.rows.keys().copied()
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

fn parse_row(line: usize, raw: &'static str) -> Result<(&'static str, Mapping), TableError> {
    let columns: Vec<&'static str> = raw.split('\t').collect();
    let [event_type, category, action, outcome, target_type] = columns[..] else {
        return Err(TableError::Columns {
            line,
            found: columns.len(),
        });
    };
    // Types come from upstream and may carry dots or capitals (`AUTH_LOG`); the columns we
    // own are held to a tighter shape so queries over them stay predictable.
    if event_type.is_empty() || event_type.contains(char::is_whitespace) {
        return Err(TableError::BadValue { line, column: "type" });
    }
    if !CATEGORIES.contains(&category) {
        return Err(TableError::Category {
            line,
            category: category.to_string(),
        });
    }
    if !is_identifier(action) {
        return Err(TableError::BadValue { line, column: "action" });
    }
    let outcome = match outcome {
        "success" => Outcome::Success,
        "failure" => Outcome::Failure,
        "unknown" => Outcome::Unknown,
        other => {
            return Err(TableError::Outcome {
                line,
                outcome: other.to_string(),
            });
        }
    };
    let target_type = match target_type {
        "-" => None,
        name if is_identifier(name) => Some(name),
        _ => {
            return Err(TableError::BadValue {
                line,
                column: "target_type",
            });
        }
    };
    Ok((
        event_type,
        Mapping {
            category,
            action,
            outcome,
            target_type,
        },
    ))
}

fn is_identifier(value: &str) -> bool {
    !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

const AUDIT_LOG_TSV: &str = include_str!("audit_log_types.tsv");

// The file is compiled in, so the unit tests see exactly what production sees: errors are
// dropped here because a test fails on any of them before a build can ship.
static AUDIT_LOG: LazyLock<MappingTable> = LazyLock::new(|| MappingTable::parse(AUDIT_LOG_TSV).0);

/// The mapping of an OpenAI Admin API audit-log type; `None` for a type the spec did not
/// list when the table was written.
pub fn audit_log_mapping(event_type: &str) -> Option<&'static Mapping> {
    AUDIT_LOG.get(event_type)
}

const COMPLIANCE_TSV: &str = include_str!("compliance_types.tsv");

static COMPLIANCE: LazyLock<MappingTable> = LazyLock::new(|| MappingTable::parse(COMPLIANCE_TSV).0);

/// The mapping of a Compliance Logs Platform record: `TYPE:sub_type` when the table names the
/// sub-type, else `TYPE`; `None` for a record type the table does not know.
pub fn compliance_mapping(record_type: &str, sub_type: Option<&str>) -> Option<&'static Mapping> {
    let mut buf = [0u8; 128];
    sub_type
        .and_then(|sub| COMPLIANCE.get(&joined(&mut buf, record_type, sub)))
        .or_else(|| COMPLIANCE.get(record_type))
}

/// `a:b`, assembled in `buf` when it fits (it does for every key of the table): this runs
/// once per record, and `format!` would allocate each time.
fn joined<'b>(buf: &'b mut [u8; 128], a: &str, b: &str) -> Cow<'b, str> {
    let Some(out) = buf.get_mut(..a.len() + 1 + b.len()) else {
        return Cow::Owned(format!("{a}:{b}"));
    };
    let (head, tail) = out.split_at_mut(a.len());
    head.copy_from_slice(a.as_bytes());
    tail[0] = b':';
    tail[1..].copy_from_slice(b.as_bytes());
    // Two strings and a `:` are UTF-8.
    std::str::from_utf8(out).map_or_else(|_| Cow::Owned(format!("{a}:{b}")), Cow::Borrowed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    const DOCUMENTED_TYPES: &str = include_str!("../../tests/fixtures/audit_log_event_types.txt");

    fn documented_types() -> Vec<&'static str> {
        DOCUMENTED_TYPES
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect()
    }

    #[test]
    fn a_compliance_key_is_joined_on_the_stack_or_in_a_string_when_long() {
        let mut buf = [0u8; 128];
        assert!(matches!(
            joined(&mut buf, "AUTH_LOG", "LOGIN"),
            Cow::Borrowed("AUTH_LOG:LOGIN")
        ));
        let long = "X".repeat(200);
        assert_eq!(joined(&mut buf, "AUTH_LOG", &long), format!("AUTH_LOG:{long}"));
        let exact = "Y".repeat(128 - "AUTH_LOG:".len());
        assert!(matches!(joined(&mut buf, "AUTH_LOG", &exact), Cow::Borrowed(k) if k == format!("AUTH_LOG:{exact}")));
        assert_eq!(
            compliance_mapping("AUTH_LOG", Some(&long)).map(|m| m.category),
            compliance_mapping("AUTH_LOG", None).map(|m| m.category),
            "an unknown sub-type, however long, falls back to its type"
        );
    }

    #[test]
    fn the_audit_log_table_has_no_malformed_duplicate_or_off_vocabulary_rows() {
        let (_, errors) = MappingTable::parse(AUDIT_LOG_TSV);
        assert!(errors.is_empty(), "table errors: {errors:#?}");
    }

    #[test]
    fn the_compliance_table_has_no_malformed_duplicate_or_off_vocabulary_rows() {
        let (table, errors) = MappingTable::parse(COMPLIANCE_TSV);
        assert!(errors.is_empty(), "table errors: {errors:#?}");
        for record_type in [
            "AUTH_LOG",
            "AUDIT_LOG",
            "CONVERSATION_MESSAGE",
            "APP_LOG",
            "APP_AUTH_LOG",
            "CUSTOM_AGENTS_LOG",
            "CODEX_LOG",
            "CODEX_SECURITY_LOG",
        ] {
            assert!(table.get(record_type).is_some(), "{record_type} has no type row");
        }
        assert_eq!(
            compliance_mapping("AUTH_LOG", Some("login_failed")).map(|m| m.outcome),
            Some(Outcome::Failure)
        );
        assert_eq!(
            compliance_mapping("AUTH_LOG", Some("new_kind")).map(|m| m.category),
            Some("authentication")
        );
        assert_eq!(compliance_mapping("COSTS", None), None);
    }

    #[test]
    fn the_fixture_lists_all_147_documented_types_once() {
        let types = documented_types();
        assert_eq!(types.len(), 147);
        assert_eq!(types.iter().collect::<HashSet<_>>().len(), 147);
    }

    #[test]
    fn every_documented_type_maps_to_a_real_category_action_and_outcome() {
        for event_type in documented_types() {
            let mapping = audit_log_mapping(event_type).unwrap_or_else(|| panic!("`{event_type}` has no mapping"));
            assert!(
                CATEGORIES.contains(&mapping.category) && mapping.category != "other",
                "`{event_type}` → category `{}`",
                mapping.category
            );
            assert_ne!(mapping.action, "unknown", "`{event_type}` has no action");
            assert_ne!(mapping.outcome, Outcome::Unknown, "`{event_type}` outcome");
        }
    }

    #[test]
    fn the_table_maps_no_type_the_spec_does_not_document() {
        let documented: HashSet<_> = documented_types().into_iter().collect();
        let extra: Vec<_> = AUDIT_LOG.types().filter(|t| !documented.contains(t)).collect();
        assert!(extra.is_empty(), "undocumented types in the table: {extra:?}");
        assert_eq!(AUDIT_LOG.len(), documented.len());
    }

    #[test]
    fn only_failed_logins_and_logouts_are_failures() {
        for event_type in documented_types() {
            let expected = match event_type {
                "login.failed" | "logout.failed" => Outcome::Failure,
                _ => Outcome::Success,
            };
            assert_eq!(
                audit_log_mapping(event_type).map(|m| m.outcome),
                Some(expected),
                "{event_type}"
            );
        }
    }

    #[test]
    fn logins_and_logouts_have_no_target_and_everything_else_has_one() {
        for event_type in documented_types() {
            let has_target = audit_log_mapping(event_type).and_then(|m| m.target_type);
            let is_session_event = event_type.starts_with("login.") || event_type.starts_with("logout.");
            assert_eq!(has_target.is_none(), is_session_event, "{event_type}");
        }
    }

    #[test]
    fn an_unknown_type_has_no_mapping() {
        assert_eq!(audit_log_mapping("spaceship.launched"), None);
    }

    #[test]
    fn a_row_with_too_few_columns_is_reported() {
        let (table, errors) = MappingTable::parse("a.b\tidentity\tcreated\tsuccess\n");
        assert_eq!(errors, vec![TableError::Columns { line: 1, found: 4 }]);
        assert!(table.is_empty());
    }

    #[test]
    fn a_duplicate_row_is_reported_and_the_first_one_kept() {
        let (table, errors) =
            MappingTable::parse("# header\na.b\tidentity\tcreated\tsuccess\tuser\na.b\tbilling\tupdated\tsuccess\t-\n");
        assert_eq!(
            errors,
            vec![TableError::Duplicate {
                line: 3,
                first: 2,
                event_type: "a.b".into()
            }]
        );
        assert_eq!(table.get("a.b").map(|m| m.category), Some("identity"));
    }

    #[test]
    fn a_category_outside_the_vocabulary_is_reported() {
        let (_, errors) = MappingTable::parse("a.b\tsecurity\tcreated\tsuccess\tuser\n");
        assert_eq!(
            errors,
            vec![TableError::Category {
                line: 1,
                category: "security".into()
            }]
        );
    }

    #[test]
    fn a_bad_outcome_or_action_is_reported() {
        let (_, errors) =
            MappingTable::parse("a.b\tidentity\tcreated\tmaybe\tuser\nc.d\tidentity\tCreated It\tsuccess\tuser\n");
        assert_eq!(
            errors,
            vec![
                TableError::Outcome {
                    line: 1,
                    outcome: "maybe".into()
                },
                TableError::BadValue {
                    line: 2,
                    column: "action"
                },
            ]
        );
    }

    #[test]
    fn the_loader_takes_rows_from_other_sources_unchanged() {
        let (table, errors) = MappingTable::parse("AUTH_LOG\tauthentication\tlogin\tunknown\t-\n");
        assert!(errors.is_empty());
        assert_eq!(
            table.get("AUTH_LOG"),
            Some(&Mapping {
                category: "authentication",
                action: "login",
                outcome: Outcome::Unknown,
                target_type: None
            })
        );
    }
}
