//! How far an inventory run got — per kind what its lists showed, saved in the checkpoint
//! after every list — and the fixed order of the organization-level lists.

use super::*;

/// What a run has done so far, saved in the checkpoint after every list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunProgress {
    /// The run's generation (the previous one + 1).
    pub generation: u64,
    /// The run's time: a resumed run stamps its events as the interrupted one would have.
    pub at: DateTime<Utc>,
    /// Lists read (to their end or to a failure), in the run's fixed order.
    pub lists_done: usize,
    /// Bytes of this run's snapshot file that those lists wrote.
    pub written: u64,
    /// Pages read.
    pub pages: u64,
    /// Kind name → what its lists showed.
    pub kinds: BTreeMap<String, Tally>,
    /// An incremental run: only the lists the audit log named since `since` are read.
    #[serde(default)]
    pub incremental: bool,
    /// The previous run's time, where the audit-log window of this run starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
    /// Changes a full run found that no audit event since the previous run announced.
    #[serde(default)]
    pub unannounced: usize,
}

/// What one kind's lists showed so far in a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Tally {
    /// Pages read (requests that answered), for the per-run request metric.
    #[serde(default)]
    pub pages: u64,
    pub count: usize,
    pub observed: usize,
    pub added: usize,
    pub changed: usize,
    #[serde(default)]
    pub removed: usize,
    pub unreadable: usize,
    /// `<scope or kind>: <error>` for every list that failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<String>,
    /// Scopes whose list failed: their objects are never taken for removed.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub failed_scopes: BTreeSet<String>,
    /// The parent list failed, so the children of unknown parents were never asked for.
    #[serde(default)]
    pub parents_unknown: bool,
    /// The organization-level endpoint answered 404: not offered to this organization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
    /// In an incremental run, the scopes (`""`: the organization-level list) read to the end.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub listed: BTreeSet<String>,
}

impl Tally {
    /// Listed to the end everywhere, every item readable.
    pub fn complete(&self) -> bool {
        self.failures.is_empty() && !self.parents_unknown && self.unavailable.is_none() && self.unreadable == 0
    }

    /// Whether an object under `scope` that this run did not list is really gone: the kind
    /// was listed completely, or its parents were and this scope's list did not fail (a
    /// parent that is gone has no children left).
    /// In an incremental run only the scopes read again and to their end count.
    pub(super) fn covers(&self, scope: Option<&str>, incremental: bool) -> bool {
        if incremental {
            return self.unavailable.is_none()
                && self.unreadable == 0
                && self.listed.contains(scope.unwrap_or(""))
                && scope.map_or(self.failures.is_empty(), |s| !self.failed_scopes.contains(s));
        }
        self.complete()
            || (!self.parents_unknown
                && self.unavailable.is_none()
                && scope.is_some_and(|s| !self.failed_scopes.contains(s)))
    }
}

impl RunProgress {
    pub fn new(generation: u64, at: DateTime<Utc>) -> Self {
        Self {
            generation,
            at,
            lists_done: 0,
            written: 0,
            pages: 0,
            kinds: Kind::ALL
                .iter()
                .map(|k| (k.name().to_string(), Tally::default()))
                .collect(),
            incremental: false,
            since: None,
            unannounced: 0,
        }
    }

    /// The run's label in metrics and summaries.
    pub fn label(&self) -> &'static str {
        if self.incremental { "incremental" } else { "full" }
    }

    pub(super) fn tally(&mut self, kind: Kind) -> &mut Tally {
        self.kinds.entry(kind.name().to_string()).or_default()
    }
}

/// The organization-level lists, in the order a run reads them (the parents first).
pub(super) fn top_lists() -> Vec<(Kind, Option<String>)> {
    Kind::ALL
        .into_iter()
        .filter(|k| k.parent() == Parent::Org)
        .map(|k| (k, None))
        .collect()
}
