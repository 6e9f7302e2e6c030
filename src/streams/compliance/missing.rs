//! Pure bookkeeping for a listed file whose download answers 404: since when it has been
//! missing, and whether the grace period (`compliance.missing_file_grace`) is over. A 404 on
//! a file the list just named is most often a gap that closes (a replica behind, a transient
//! storage error), so it is waited for; only a file missing for the whole period is lost.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The file whose download answers 404, and when that was first seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissingFile {
    pub file_id: String,
    /// Unix seconds of the first 404.
    pub since: i64,
}

/// What to do about one more 404.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Still within the grace period: fail the cycle and try again after a backoff. `first`
    /// when this is the first 404 of this file (worth saving).
    Wait { first: bool, missing_for: i64 },
    /// Missing for longer than the grace period: give the file up.
    GiveUp { missing_for: i64 },
}

/// Records a 404 of `file_id` at `now` in `missing` and judges it against `grace`.
pub fn judge(missing: &mut Option<MissingFile>, file_id: &str, now: i64, grace: Duration) -> Verdict {
    let (first, since) = match missing {
        Some(m) if m.file_id == file_id => (false, m.since),
        _ => (true, now),
    };
    *missing = Some(MissingFile {
        file_id: file_id.to_string(),
        since,
    });
    let missing_for = now.saturating_sub(since).max(0);
    if u64::try_from(missing_for).unwrap_or(0) >= grace.as_secs() {
        Verdict::GiveUp { missing_for }
    } else {
        Verdict::Wait { first, missing_for }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3_600);

    #[test]
    fn a_file_is_waited_for_until_it_has_been_missing_for_the_whole_grace_period() {
        let mut missing = None;
        assert_eq!(
            judge(&mut missing, "f1", 1_000, HOUR),
            Verdict::Wait {
                first: true,
                missing_for: 0
            }
        );
        assert_eq!(
            judge(&mut missing, "f1", 4_599, HOUR),
            Verdict::Wait {
                first: false,
                missing_for: 3_599
            }
        );
        assert_eq!(
            judge(&mut missing, "f1", 4_600, HOUR),
            Verdict::GiveUp { missing_for: 3_600 }
        );
    }

    #[test]
    fn another_file_starts_its_own_grace_period() {
        let mut missing = Some(MissingFile {
            file_id: "f1".into(),
            since: 0,
        });
        assert_eq!(
            judge(&mut missing, "f2", 10_000, HOUR),
            Verdict::Wait {
                first: true,
                missing_for: 0
            }
        );
    }

    #[test]
    fn without_a_grace_period_a_missing_file_is_given_up_at_once() {
        let mut missing = None;
        assert_eq!(
            judge(&mut missing, "f1", 1_000, Duration::ZERO),
            Verdict::GiveUp { missing_for: 0 }
        );
    }
}
