//! One organization's part of the state directory. With `[[orgs]]`, each organization keeps
//! its checkpoints, spool and quarantine under `<state.dir>/<org_id>/`, laid out as the root
//! is for the single organization of `[openai]` (which keeps using the root, as before
//! `[[orgs]]` existed, so an existing state directory needs no migration). The lock, the
//! dead-letter file and the guardrails' checkpoint stay at the root: one of each, shared.

use std::path::PathBuf;

use super::{
    CHECKPOINTS, CheckpointError, CheckpointStore, INVENTORY, QUARANTINE, SPOOL, SnapshotFiles, Spool, StateDir,
    StateError, atomic_file,
};

/// Names at the root of the state directory that are not organizations.
const RESERVED: &[&str] = &[
    super::LOCK,
    CHECKPOINTS,
    super::DEAD_LETTER,
    super::REPLAY_SCRATCH,
    SPOOL,
    QUARANTINE,
    INVENTORY,
];

/// Why `org_id` cannot name an organization's directory, if it cannot: only ASCII letters,
/// digits, `-` and `_` (real ids look like `org-AbC123`), at most 64 of them, and none of the
/// names the root already uses.
pub fn org_dir_problem(org_id: &str) -> Option<String> {
    if org_id.is_empty() || org_id.len() > 64 {
        return Some("must be 1 to 64 characters long".to_string());
    }
    if !org_id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Some(format!(
            "`{org_id}` may only hold ASCII letters, digits, `-` and `_` (it names the organization's state directory and streams)"
        ));
    }
    if RESERVED.contains(&org_id) {
        return Some(format!("`{org_id}` is a name the state directory already uses"));
    }
    None
}

/// Where one organization's streams keep their state.
#[derive(Debug, Clone)]
pub struct OrgState {
    dir: PathBuf,
}

impl OrgState {
    /// The state at `dir`, once the daemon holds the lock: what a crashed run left
    /// half-downloaded in its spool is removed (it is downloaded again).
    fn opened(dir: PathBuf) -> Self {
        let state = Self { dir };
        match state.spool().remove_leftovers() {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                files = n,
                spool = %state.dir.join(SPOOL).display(),
                "removed partial compliance downloads a previous run left in the spool"
            ),
            Err(err) => {
                tracing::warn!(error.message = %err, "failed to clear the compliance spool of partial downloads")
            }
        }
        state
    }

    /// This organization's checkpoint store (`checkpoints/`, created on first use).
    pub fn checkpoints(&self) -> Result<CheckpointStore, CheckpointError> {
        CheckpointStore::open(&self.dir.join(CHECKPOINTS))
    }

    /// This organization's inventory snapshot files (`inventory/`, created on first write).
    pub fn inventory_snapshots(&self) -> SnapshotFiles {
        SnapshotFiles::new(self.dir.join(INVENTORY))
    }

    /// This organization's compliance spool and quarantine.
    pub fn spool(&self) -> Spool {
        Spool::new(self.dir.join(SPOOL), self.dir.join(QUARANTINE))
    }
}

impl StateDir {
    /// The state of organization `scope` (`<state.dir>/<org_id>/`, created mode 0700), or of
    /// the single organization of `[openai]` (`None`: the root, the layout from before
    /// `[[orgs]]`).
    pub fn org(&self, scope: Option<&str>) -> Result<OrgState, StateError> {
        let Some(org_id) = scope else {
            return Ok(OrgState::opened(self.root.clone()));
        };
        if let Some(problem) = org_dir_problem(org_id) {
            return Err(StateError::Unsafe(format!("organization id {problem}")));
        }
        let dir = self.root.join(org_id);
        atomic_file::ensure_private_dir(&dir, false).map_err(|source| {
            if atomic_file::is_unsafe(&source) {
                StateError::Unsafe(source.to_string())
            } else {
                StateError::Prepare {
                    path: dir.clone(),
                    source,
                }
            }
        })?;
        Ok(OrgState::opened(dir))
    }

    /// Organization directories at the root that no configured organization uses (a block
    /// removed from `[[orgs]]`): their state is left as it is, for the operator to keep,
    /// restore (by adding the block again) or delete.
    pub fn unconfigured_orgs(&self, configured: &[&str]) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return Vec::new();
        };
        let mut found: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter(|e| {
                let name = e.file_name();
                let name = name.to_string_lossy();
                org_dir_problem(&name).is_none() && !configured.contains(&name.as_ref())
            })
            .map(|e| e.path())
            .collect();
        found.sort();
        found
    }

    /// Whether the root holds stream checkpoints of a single-organization configuration
    /// (anything in `checkpoints/` but the guardrails' own).
    pub fn has_single_org_checkpoints(&self, shared: &[&str]) -> bool {
        let Ok(entries) = std::fs::read_dir(self.root.join(CHECKPOINTS)) else {
            return false;
        };
        entries.filter_map(Result::ok).any(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.ends_with(".json") && !shared.iter().any(|s| name == format!("{s}.json"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn each_organization_keeps_its_checkpoints_apart_and_the_single_one_keeps_the_root() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = StateDir::open(dir.path()).expect("open");
        let a = state.org(Some("org-a")).expect("org-a").checkpoints().expect("store");
        let b = state.org(Some("org-b")).expect("org-b").checkpoints().expect("store");
        a.save("audit_logs", &json!({"w": 1})).expect("save");
        assert_eq!(b.load::<Value>("audit_logs").expect("load"), None);
        assert!(dir.path().join("org-a/checkpoints/audit_logs.json").is_file());
        let single = state.org(None).expect("root").checkpoints().expect("store");
        single.save("audit_logs", &json!({"w": 2})).expect("save");
        assert!(dir.path().join("checkpoints/audit_logs.json").is_file());
    }

    #[test]
    fn a_removed_organization_is_found_and_reserved_names_are_not_organizations() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = StateDir::open(dir.path()).expect("open");
        state.org(Some("org-a")).expect("org-a");
        state.org(Some("org-gone")).expect("org-gone");
        state.org(None).expect("root").checkpoints().expect("root store");
        let removed = state.unconfigured_orgs(&["org-a"]);
        assert_eq!(removed, vec![dir.path().join("org-gone")]);
        assert!(org_dir_problem("checkpoints").is_some());
        assert!(org_dir_problem("../etc").is_some());
        assert!(org_dir_problem("org-AbC_123").is_none());
    }

    #[test]
    fn single_organization_checkpoints_are_told_from_the_shared_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = StateDir::open(dir.path()).expect("open");
        let root = state.checkpoints().expect("store");
        root.save("guardrails", &json!({})).expect("save");
        assert!(!state.has_single_org_checkpoints(&["guardrails"]));
        root.save("audit_logs", &json!({})).expect("save");
        assert!(state.has_single_org_checkpoints(&["guardrails"]));
    }
}
