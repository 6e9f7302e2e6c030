//! What the daemon left in its state directory: checkpoints, dead letters, quarantined files.

use std::path::PathBuf;

use serde_json::Value;

use super::app::TestApp;

impl TestApp {
    /// Where the checkpoint of `stream` is saved.
    pub fn checkpoint_path(&self, stream: &str) -> PathBuf {
        self.state
            .path()
            .join("checkpoints")
            .join(format!("{}.json", stream.replace(':', "-")))
    }

    /// The saved checkpoint of organization `org_id`'s stream `stream` (`[[orgs]]`).
    pub fn org_checkpoint(&self, org_id: &str, stream: &str) -> Option<Value> {
        let path = self
            .state
            .path()
            .join(org_id)
            .join("checkpoints")
            .join(format!("{stream}.json"));
        let bytes = std::fs::read(path).ok()?;
        serde_json::from_slice::<Value>(&bytes).ok().map(|v| v["state"].clone())
    }

    /// Writes `state` as the saved checkpoint of `stream`, as the daemon would have saved it
    /// (for a test that starts from a position of its choosing).
    pub fn write_checkpoint(&self, stream: &str, state: Value) {
        let path = self.checkpoint_path(stream);
        std::fs::create_dir_all(path.parent().expect("checkpoint dir")).expect("checkpoint dir");
        let file = serde_json::json!({
            "version": 1,
            "stream": stream,
            "saved_at": chrono::Utc::now().to_rfc3339(),
            "state": state,
        });
        std::fs::write(&path, file.to_string()).expect("checkpoint written");
    }

    /// The saved checkpoint of `stream`, if any.
    pub fn checkpoint(&self, stream: &str) -> Option<Value> {
        let bytes = std::fs::read(self.checkpoint_path(stream)).ok()?;
        serde_json::from_slice::<Value>(&bytes).ok().map(|v| v["state"].clone())
    }

    /// The dead-letter file, one JSON value a line; fails the test if there is none.
    pub fn dead_letters(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(self.state.path().join("dead-letter.ndjson")).expect("dead-letter file");
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
            .collect()
    }

    /// The files in quarantine (a corrupt file's bytes and the reason beside them).
    pub fn quarantined(&self) -> Vec<PathBuf> {
        match std::fs::read_dir(self.state.path().join("quarantine")) {
            Ok(dir) => dir.filter_map(Result::ok).map(|e| e.path()).collect(),
            Err(_) => Vec::new(),
        }
    }
}
