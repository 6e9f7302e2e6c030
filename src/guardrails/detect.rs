//! Content detectors: find credentials, private keys, tokens, card numbers and
//! operator-defined patterns in conversation, app/MCP and Codex text, and redact what they
//! found. A detection records the detector and the position, never the matched text.

use std::collections::HashSet;
use std::sync::OnceLock;

use regex::{Regex, RegexSet};
use serde_json::Value;

use crate::normalize::content::{self, Shape};
use crate::normalize::{Event, Source, Tree};

/// Built-in detectors: name and pattern. Earlier entries win where two overlap (an
/// Anthropic key also looks like an `sk-` key).
const BUILT_IN: &[(&str, &str)] = &[
    (
        "private_key",
        r"(?s)-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----.*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|\z)",
    ),
    ("anthropic_api_key", r"\bsk-ant-[A-Za-z0-9_-]{20,}"),
    (
        "openai_api_key",
        r"\bsk-(?:proj-|admin-|svcacct-|None-)?[A-Za-z0-9_-]{20,}",
    ),
    ("aws_access_key_id", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    ("google_api_key", r"\bAIza[0-9A-Za-z_-]{35}"),
    (
        "github_token",
        r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})",
    ),
    ("slack_token", r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
    ("stripe_secret_key", r"\b[rs]k_live_[A-Za-z0-9]{16,}"),
    ("npm_token", r"\bnpm_[A-Za-z0-9]{36}\b"),
    ("vault_token", r"\bhv[sbr]\.[A-Za-z0-9_-]{24,}"),
    ("docker_pat", r"\bdckr_pat_[A-Za-z0-9_-]{20,}"),
    ("sendgrid_api_key", r"\bSG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}"),
    (
        "azure_storage_key",
        r"\b(?:AccountKey|SharedAccessKey)=[A-Za-z0-9+/]{20,}={0,2}",
    ),
    (
        "jwt",
        r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
    ),
    // Card numbers start with 3–6 (the card networks); that keeps microsecond timestamps and
    // other long ids that happen to pass Luhn out.
    ("credit_card", r"\b[3-6](?:[ -]?\d){12,18}\b"),
];

/// Keys published in vendors' documentation as examples (AWS's own docs, SDK READMEs): a
/// match that is exactly one of these is nobody's secret.
const EXAMPLES: &[&str] = &["AKIAIOSFODNN7EXAMPLE", "ASIAIOSFODNN7EXAMPLE"];

/// Text per event scanned at most; a longer record is scanned up to here (bounded cost).
const MAX_SCAN_BYTES: usize = 256 * 1024;

/// What one detector found, and where. Holds no part of the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detection {
    /// `openai_api_key`, `credit_card`, `custom:<name>`, …
    pub detector: String,
    /// Which part of the event holds the text: `raw`, or `details` when the event carries
    /// no `raw`.
    pub part: &'static str,
    /// JSON pointer inside that part to the string (`/message/content/value`).
    pub pointer: String,
    /// Byte offsets of the match in that string.
    pub start: usize,
    pub end: usize,
}

impl Detection {
    /// Dotted location for messages: `raw.message.content.value[12..63]`.
    pub fn location(&self) -> String {
        format!(
            "{}{}[{}..{}]",
            self.part,
            self.pointer.replace('/', "."),
            self.start,
            self.end
        )
    }
}

/// The compiled detectors: one set says which detectors match a text; each detector's own
/// expression, which finds where, is compiled the first time its detector matches (most
/// runs scan no text, or find nothing, and compiling them all was a fifth of a run's start).
#[derive(Debug, Clone)]
pub struct Detectors {
    names: Vec<String>,
    patterns: Vec<String>,
    set: RegexSet,
    each: Vec<OnceLock<Option<Regex>>>,
}

impl Detectors {
    /// The built-in detectors plus `custom` (name, pattern) pairs, already validated.
    pub fn new(custom: &[(String, String)]) -> Result<Self, (String, regex::Error)> {
        let mut names = Vec::new();
        let mut patterns = Vec::new();
        let mut each = Vec::new();
        for (name, pattern) in BUILT_IN {
            names.push((*name).to_string());
            patterns.push((*pattern).to_string());
            each.push(OnceLock::new());
        }
        // A custom pattern is compiled alone to name the one that fails; that compilation is
        // the one its detector uses.
        for (name, pattern) in custom {
            let re = Regex::new(pattern).map_err(|e| (name.clone(), e))?;
            names.push(format!("custom:{name}"));
            patterns.push(pattern.clone());
            each.push(OnceLock::from(Some(re)));
        }
        let set = RegexSet::new(&patterns).map_err(|e| ("built-in".to_string(), e))?;
        Ok(Self {
            names,
            patterns,
            set,
            each,
        })
    }

    /// Detector `index`'s own expression. A pattern the set compiled compiles alone (it is
    /// smaller alone); should it ever not, the detector finds nothing rather than stopping.
    fn each(&self, index: usize) -> Option<&Regex> {
        self.each[index]
            .get_or_init(|| Regex::new(&self.patterns[index]).ok())
            .as_ref()
    }

    /// Every detector name, for validating rules that pick some.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Scans the free text of a compliance event (its `raw`, or its `details` when it carries
    /// no `raw`): every string the content table (`normalize::content`) calls text, the same
    /// strings the content policy rewrites. Pure: the event is not changed. Events from other
    /// sources carry no user content and yield nothing.
    pub fn scan(&self, event: &Event) -> Vec<Detection> {
        let mut out = Vec::new();
        let shape = content::shape(&event.event_type);
        // A type without text is not read to find none.
        if event.source != Source::Compliance || !shape.has_text() {
            return out;
        }
        match event.raw.as_ref() {
            // A record read as a tape is scanned on it; anything else on its tree.
            Some(raw) => match raw.tape() {
                Some(at) => self.scan_doc(shape, "raw", at, &mut out),
                None => self.scan_doc(shape, "raw", raw.tree(), &mut out),
            },
            None => self.scan_doc(shape, "details", &event.details, &mut out),
        }
        out
    }

    fn scan_doc<'a, T: Tree<'a>>(&self, shape: &Shape, part: &'static str, doc: T, out: &mut Vec<Detection>) {
        let mut budget = MAX_SCAN_BYTES;
        shape.for_each_text(doc, &mut |pointer, text| {
            if budget == 0 {
                return;
            }
            let mut end = text.len().min(budget);
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            budget -= end;
            self.scan_text(&text[..end], part, pointer, out);
        });
    }

    fn scan_text(&self, text: &str, part: &'static str, pointer: &str, out: &mut Vec<Detection>) {
        // Nearly every text holds nothing: asking whether anything matches allocates nothing,
        // where asking which patterns do allocates their set for every text.
        if !self.set.is_match(text) {
            return;
        }
        let hits = self.set.matches(text);
        let mut spans: Vec<(usize, usize)> = Vec::new();
        for index in hits.iter() {
            let Some(each) = self.each(index) else { continue };
            for m in each.find_iter(text) {
                if (self.names[index] == "credit_card" && !luhn(m.as_str())) || EXAMPLES.contains(&m.as_str()) {
                    continue;
                }
                if spans.iter().any(|&(s, e)| m.start() < e && s < m.end()) {
                    continue;
                }
                spans.push((m.start(), m.end()));
                out.push(Detection {
                    detector: self.names[index].clone(),
                    part,
                    pointer: pointer.to_string(),
                    start: m.start(),
                    end: m.end(),
                });
            }
        }
    }

    /// Replaces what `detections` found with `[REDACTED:<detector>]`, there and wherever the
    /// same text appears elsewhere in `raw` or `details` (a normalizer may have copied it),
    /// so the shipped event never carries the secret.
    pub fn redact(event: &mut Event, detections: &[Detection]) {
        let mut secrets: Vec<(String, String)> = Vec::new();
        let mut by_pointer: Vec<&Detection> = detections.iter().collect();
        // Right to left inside each string, so earlier offsets stay valid.
        by_pointer.sort_by(|a, b| a.pointer.cmp(&b.pointer).then(b.start.cmp(&a.start)));
        for d in by_pointer {
            let root = match (d.part, event.raw.as_mut()) {
                ("raw", Some(raw)) => raw.tree_mut(),
                ("details", _) => &mut event.details,
                _ => continue,
            };
            if let Some(Value::String(s)) = root.pointer_mut(&d.pointer)
                && let Some(secret) = s.get(d.start..d.end)
            {
                let secret = secret.to_string();
                s.replace_range(d.start..d.end, &format!("[REDACTED:{}]", d.detector));
                secrets.push((secret, d.detector.clone()));
            }
        }
        if secrets.is_empty() {
            return;
        }
        let mut seen = HashSet::new();
        secrets.retain(|(s, _)| seen.insert(s.clone()));
        if let Some(raw) = event.raw.as_mut() {
            replace_everywhere(raw.tree_mut(), &secrets);
        }
        replace_everywhere(&mut event.details, &secrets);
        // The target's name may be a copy of text (a conversation title).
        if let Some(name) = event.target.as_mut().and_then(|t| t.name.as_mut()) {
            replace_in(name, &secrets);
        }
    }
}

fn replace_in(s: &mut String, secrets: &[(String, String)]) {
    for (secret, detector) in secrets {
        if s.contains(secret.as_str()) {
            *s = s.replace(secret.as_str(), &format!("[REDACTED:{detector}]"));
        }
    }
}

fn replace_everywhere(v: &mut Value, secrets: &[(String, String)]) {
    match v {
        Value::String(s) => replace_in(s, secrets),
        Value::Array(items) => items.iter_mut().for_each(|i| replace_everywhere(i, secrets)),
        Value::Object(map) => map.values_mut().for_each(|i| replace_everywhere(i, secrets)),
        _ => {}
    }
}

/// The Luhn checksum over the digits of `text` (13 to 19 of them).
fn luhn(text: &str) -> bool {
    let digits: Vec<u32> = text.chars().filter_map(|c| c.to_digit(10)).collect();
    if !(13..=19).contains(&digits.len()) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                let d2 = d * 2;
                if d2 > 9 { d2 - 9 } else { d2 }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use serde_json::json;

    const OPENAI_KEY: &str = "sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789";

    fn chat(text: &str) -> Event {
        let mut e = Event::new(
            "chatgpt.compliance:ws:m1".into(),
            Source::Compliance,
            None,
            "CONVERSATION_MESSAGE".into(),
            Utc::now(),
        );
        e.raw = Some(json!({"message": {"content": {"type": "text", "value": text}}}).into());
        e
    }

    fn detectors() -> Detectors {
        Detectors::new(&[("employee_id".into(), r"\bEMP-\d{6}\b".into())]).expect("valid")
    }

    fn found(text: &str) -> Vec<String> {
        detectors().scan(&chat(text)).into_iter().map(|d| d.detector).collect()
    }

    #[test]
    fn each_detector_finds_its_kind() {
        assert_eq!(found(&format!("my key is {OPENAI_KEY} ok")), ["openai_api_key"]);
        assert_eq!(found("sk-ant-api03-AbCdEfGhIjKlMnOpQrStUv"), ["anthropic_api_key"]);
        assert_eq!(found("AKIAZ7QW3ERT5YU2IOP4"), ["aws_access_key_id"]);
        assert_eq!(found("npm_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"), ["npm_token"]);
        assert_eq!(found("VAULT_TOKEN=hvs.CAESIAbCdEfGhIjKlMnOpQrStUvWx"), ["vault_token"]);
        assert_eq!(found("docker login -p dckr_pat_AbCdEfGhIjKlMnOpQrStUv"), ["docker_pat"]);
        assert_eq!(
            found("SG.AbCdEfGhIjKlMnOpQr.StUvWxYz0123456789AbCdEf"),
            ["sendgrid_api_key"]
        );
        assert_eq!(
            found("DefaultEndpointsProtocol=https;AccountName=x;AccountKey=AbCdEfGhIjKlMnOpQrStUvWxYz0123456789+/==;"),
            ["azure_storage_key"]
        );
        assert_eq!(
            found("-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----"),
            ["private_key"]
        );
        assert_eq!(
            found("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"),
            ["jwt"]
        );
        assert_eq!(found("card 4111 1111 1111 1111 exp 12/29"), ["credit_card"]);
        assert_eq!(found("badge EMP-123456"), ["custom:employee_id"]);
    }

    #[test]
    fn near_misses_are_not_flagged() {
        assert!(found("sk-short and a task-list").is_empty());
        assert!(found("card 4111 1111 1111 1112").is_empty(), "fails the Luhn check");
        assert!(found("AKIA-not-a-key").is_empty());
        assert!(
            found("Use AKIAIOSFODNN7EXAMPLE in the docs").is_empty(),
            "AWS's documented example key"
        );
        assert!(found("npm_install is a script name").is_empty());
        assert!(
            found("at 1770000000000006 us").is_empty(),
            "a timestamp that passes Luhn"
        );
        assert!(found("Summarize the Q3 numbers for me.").is_empty());
    }

    #[test]
    fn a_detection_records_the_position_and_redaction_removes_every_copy() {
        let text = format!("use {OPENAI_KEY} please");
        let mut event = chat(&text);
        event.details = json!({"preview": format!("use {OPENAI_KEY}")});
        let detections = detectors().scan(&event);
        assert_eq!(detections.len(), 1);
        let d = &detections[0];
        assert_eq!((d.start, d.end), (4, 4 + OPENAI_KEY.len()));
        assert_eq!(
            d.location(),
            format!("raw.message.content.value[4..{}]", 4 + OPENAI_KEY.len())
        );
        Detectors::redact(&mut event, &detections);
        let shipped = serde_json::to_string(&event).expect("json");
        assert!(!shipped.contains(OPENAI_KEY), "{shipped}");
        assert!(shipped.contains("use [REDACTED:openai_api_key] please"));
        assert!(!format!("{d:?}").contains(OPENAI_KEY));
    }

    #[test]
    fn tool_call_input_and_output_are_scanned_but_other_sources_are_not() {
        let mut e = chat("nothing");
        e.event_type = "APP_LOG".into();
        e.raw = Some(
            json!({"input": {"query": "AKIAZ7QW3ERT5YU2IOP4"},
                            "output": [{"response": {"result": {"content": [{"text": OPENAI_KEY}]}}}]})
            .into(),
        );
        let d = detectors().scan(&e);
        assert_eq!(d.len(), 2);
        assert_eq!(d[1].pointer, "/output/0/response/result/content/0/text");
        e.source = Source::AuditLog;
        assert!(detectors().scan(&e).is_empty());
    }

    #[test]
    fn without_raw_the_same_paths_in_details_are_scanned_and_redacted() {
        let mut e = chat("nothing");
        e.raw = None;
        e.details = json!({"message": {"content": {"value": format!("key {OPENAI_KEY}")}}});
        let d = detectors().scan(&e);
        assert_eq!(d.len(), 1);
        assert!(
            d[0].location().starts_with("details.message.content.value[4.."),
            "{}",
            d[0].location()
        );
        Detectors::redact(&mut e, &d);
        assert!(!e.details.to_string().contains(OPENAI_KEY));
    }
}
