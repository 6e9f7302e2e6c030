//! Run-time fault injection: per endpoint family, scripted failures for the next N responses
//! or for every response until cleared.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The endpoint families a fault can target; each has its own queue so a test can break one
/// upstream without disturbing the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// `GET /v1/organization/audit_logs`.
    AuditLogs,
    /// Every inventory list under `/v1/organization/…` except audit logs.
    Inventory,
    /// `GET /chatgpt/v1/compliance/…/logs`.
    ComplianceList,
    /// `GET /chatgpt/v1/compliance/…/logs/{file_id}` (the 307).
    ComplianceDownload,
    /// `GET /signed/{token}` (the file body).
    SignedUrl,
}

/// One way a response can go wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// 429 with `Retry-After: <secs>` and OpenAI's rate-limit error body.
    TooManyRequests { retry_after_secs: u64 },
    /// A 5xx (or any status) with an OpenAI-shaped error body.
    Status { status: u16 },
    /// Answer normally, but only after this many milliseconds.
    LatencyMs { ms: u64 },
    /// 200 whose body is not valid JSON.
    MalformedJson,
    /// 200 with valid JSON that lacks the envelope's required fields.
    MissingFields,
    /// 200 repeating the previous response of this family verbatim (same page, same cursor).
    RepeatPage,
    /// File body whose bytes no longer match the listed `file_sha256`.
    CorruptFile,
    /// The real file body, trickled out `chunk_bytes` at a time every `every_ms`
    /// milliseconds: each read is quick, the whole transfer slow.
    SlowBody { chunk_bytes: usize, every_ms: u64 },
}

impl Fault {
    /// Latency is one fault that still lets the real answer through (`SlowBody` the other).
    pub fn latency(&self) -> Option<Duration> {
        match self {
            Fault::LatencyMs { ms } => Some(Duration::from_millis(*ms)),
            _ => None,
        }
    }
}

/// Body of `POST /_sim/faults`: inject a fault, or clear everything.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum FaultCommand {
    /// `{"family": "audit_logs", "fault": {"kind": "status", "status": 503}, "times": 2}`;
    /// without `times` the fault stays until cleared.
    Inject {
        family: Family,
        fault: Fault,
        #[serde(default)]
        times: Option<u32>,
    },
    /// `{"clear": true}`.
    Clear { clear: bool },
}

#[derive(Debug, Default)]
struct FamilyState {
    queue: VecDeque<Fault>,
    always: Option<Fault>,
    served: u64,
    /// Every request of the family, faulted or not.
    requests: u64,
    /// The last healthy body, for `RepeatPage`.
    last_body: Option<bytes::Bytes>,
}

/// Fault switches shared by every handler. Cheap to call on every request.
#[derive(Debug, Default)]
pub struct Faults {
    inner: Mutex<HashMap<Family, FamilyState>>,
}

impl Faults {
    fn with<R>(&self, family: Family, f: impl FnOnce(&mut FamilyState) -> R) -> R {
        // A poisoned lock only means a test panicked mid-update; the data is still usable.
        let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        f(map.entry(family).or_default())
    }

    /// The next `times` responses of `family` get `fault`.
    pub fn inject(&self, family: Family, fault: Fault, times: u32) {
        self.with(family, |s| s.queue.extend(std::iter::repeat_n(fault, times as usize)));
    }

    /// Every response of `family` gets `fault` until [`Faults::clear`] (or `None`).
    pub fn set_always(&self, family: Family, fault: Option<Fault>) {
        self.with(family, |s| s.always = fault);
    }

    /// Remove every scripted and permanent fault.
    pub fn clear(&self) {
        let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        for s in map.values_mut() {
            s.queue.clear();
            s.always = None;
        }
    }

    /// How many faults `family` has served so far (tests assert the client really met them).
    pub fn served(&self, family: Family) -> u64 {
        self.with(family, |s| s.served)
    }

    /// How many requests `family` has received so far, faulted or not (tests assert how
    /// much a client fetched, e.g. that backpressure stopped it).
    pub fn requests(&self, family: Family) -> u64 {
        self.with(family, |s| s.requests)
    }

    /// Apply a control-endpoint command.
    pub fn apply(&self, cmd: FaultCommand) {
        match cmd {
            FaultCommand::Inject {
                family,
                fault,
                times: Some(n),
            } => self.inject(family, fault, n),
            FaultCommand::Inject {
                family,
                fault,
                times: None,
            } => self.set_always(family, Some(fault)),
            FaultCommand::Clear { clear } => {
                if clear {
                    self.clear();
                }
            }
        }
    }

    /// Consume the fault (if any) that applies to the current request of `family`.
    pub(crate) fn take(&self, family: Family) -> Option<Fault> {
        self.with(family, |s| {
            s.requests += 1;
            let fault = s.queue.pop_front().or_else(|| s.always.clone());
            if fault.is_some() {
                s.served += 1;
            }
            fault
        })
    }

    pub(crate) fn remember_body(&self, family: Family, body: bytes::Bytes) {
        self.with(family, |s| s.last_body = Some(body));
    }

    pub(crate) fn last_body(&self, family: Family) -> Option<bytes::Bytes> {
        self.with(family, |s| s.last_body.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripted_faults_run_out_and_permanent_ones_stay() {
        let f = Faults::default();
        f.inject(Family::AuditLogs, Fault::Status { status: 503 }, 2);
        assert!(f.take(Family::AuditLogs).is_some());
        assert!(f.take(Family::Inventory).is_none());
        assert!(f.take(Family::AuditLogs).is_some());
        assert!(f.take(Family::AuditLogs).is_none());
        f.set_always(Family::SignedUrl, Some(Fault::CorruptFile));
        assert_eq!(f.take(Family::SignedUrl), Some(Fault::CorruptFile));
        assert_eq!(f.take(Family::SignedUrl), Some(Fault::CorruptFile));
        f.clear();
        assert!(f.take(Family::SignedUrl).is_none());
        assert_eq!(f.served(Family::AuditLogs), 2);
    }

    #[test]
    fn control_commands_parse_from_json() {
        let cmd: FaultCommand = serde_json::from_str(
            r#"{"family":"audit_logs","fault":{"kind":"too_many_requests","retry_after_secs":3},"times":1}"#,
        )
        .expect("valid command");
        let f = Faults::default();
        f.apply(cmd);
        assert_eq!(
            f.take(Family::AuditLogs),
            Some(Fault::TooManyRequests { retry_after_secs: 3 })
        );
        let clear: FaultCommand = serde_json::from_str(r#"{"clear":true}"#).expect("valid");
        assert!(matches!(clear, FaultCommand::Clear { clear: true }));
    }
}
