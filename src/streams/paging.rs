//! The guard every pager shares: a listing that says there is more must say where to
//! continue, must never lead back to a cursor it already gave in the same pass (the same
//! cursor twice, or a cycle A → B → A), and must not serve again, under a new cursor, a page
//! of records this pass has already listed (a cycle the cursors alone do not show) — or the
//! stream would repeat pages forever. Each of these is an error the cycle backs off on.

use std::collections::{HashSet, VecDeque};
use std::hash::BuildHasher;

use foldhash::fast::{FixedState, RandomState};

/// How many record ids of one pass are remembered (as 4-byte hashes, so about 1.2 MiB at
/// most; a backfill pages several slices at once, each its own pass): a cycle that returns to
/// a page this recent is caught by its records; an older one still by its cursor.
pub(crate) const REMEMBERED_IDS: usize = 100_000;

/// The cursors and record ids one pass through a listing has seen.
#[derive(Debug, Default)]
pub(crate) struct CursorGuard {
    cursors: HashSet<String, RandomState>,
    ids: HashSet<u32, RandomState>,
    /// The order ids were seen in, to forget the oldest past [`REMEMBERED_IDS`].
    order: VecDeque<u32>,
}

/// 32 bits are enough: a page is refused only when every one of its records was seen, and
/// a page of fresh records that all collide with remembered ones (each about 100,000 in
/// 2^32) does not happen; a single collision only counts one record as known. foldhash, not
/// std's SipHash: every record of every listing is fingerprinted here.
fn fingerprint(id: &str) -> u32 {
    #[allow(clippy::cast_possible_truncation)]
    let short = FixedState::with_seed(0x6f61_6969).hash_one(id) as u32;
    short
}

/// `message`, naming the request that produced the page when OpenAI gave its id.
pub(crate) fn with_request_id(message: String, request_id: Option<&str>) -> String {
    match request_id {
        Some(id) => format!("{message} (request id {id})"),
        None => message,
    }
}

impl CursorGuard {
    /// A guard for a pass that starts at `start` (the resumed cursor, if any).
    pub(crate) fn new(start: Option<&str>) -> Self {
        Self {
            cursors: start.into_iter().map(str::to_string).collect(),
            ..Self::default()
        }
    }

    /// Checks the page just read — whether it says there is more, its cursor, how many
    /// records it holds and their ids — and returns `None` when the listing is done,
    /// otherwise the cursor to continue from; an error (for the cycle to back off on) when it
    /// cannot continue safely.
    pub(crate) fn next(
        &mut self,
        has_more: bool,
        cursor: Option<String>,
        records: usize,
        ids: impl IntoIterator<Item = impl AsRef<str>>,
    ) -> Result<Option<String>, String> {
        let (mut known, mut fresh) = (0usize, 0usize);
        for id in ids {
            if self.remember(fingerprint(id.as_ref())) {
                fresh += 1;
            } else {
                known += 1;
            }
        }
        if !has_more {
            return Ok(None);
        }
        let Some(cursor) = cursor else {
            return Err("a page says has_more but gives no cursor to continue from".to_string());
        };
        if records == 0 {
            return Err("an empty page says has_more; the cursor cannot advance".to_string());
        }
        if !self.cursors.insert(cursor.clone()) {
            return Err(format!(
                "the cursor {cursor} came back in the same pass (repeated or cyclic paging); retrying later instead of looping"
            ));
        }
        if known > 0 && fresh == 0 {
            return Err(format!(
                "a page of {records} records that this pass had all listed already came back under the new cursor {cursor} (cyclic paging); retrying later instead of looping"
            ));
        }
        Ok(Some(cursor))
    }

    /// Remembers one id; false when it was already seen in this pass.
    fn remember(&mut self, id: u32) -> bool {
        if !self.ids.insert(id) {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > REMEMBERED_IDS
            && let Some(oldest) = self.order.pop_front()
        {
            self.ids.remove(&oldest);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(g: &mut CursorGuard, cursor: &str, ids: &[&str]) -> Result<Option<String>, String> {
        g.next(true, Some(cursor.to_string()), ids.len(), ids.iter().copied())
    }

    #[test]
    fn a_listing_ends_when_nothing_more_is_said() {
        let mut g = CursorGuard::new(None);
        assert_eq!(page(&mut g, "a", &["1"]), Ok(Some("a".into())));
        assert_eq!(g.next(false, None, 0, [""; 0]), Ok(None));
    }

    #[test]
    fn a_repeated_or_cyclic_cursor_and_a_missing_one_are_errors() {
        let mut g = CursorGuard::new(Some("start"));
        assert!(page(&mut g, "start", &["1"]).is_err(), "the same cursor again");
        let mut g = CursorGuard::new(None);
        assert!(page(&mut g, "a", &["1"]).is_ok());
        assert!(page(&mut g, "b", &["2"]).is_ok());
        let cycle = page(&mut g, "a", &["3"]).expect_err("a → b → a");
        assert!(cycle.contains("came back"), "{cycle}");
        assert!(CursorGuard::new(None).next(true, None, 1, ["1"]).is_err());
        assert!(CursorGuard::new(None).next(true, Some("x".into()), 0, [""; 0]).is_err());
    }

    #[test]
    fn a_page_of_records_already_listed_under_a_new_cursor_is_a_cycle() {
        let mut g = CursorGuard::new(None);
        assert!(page(&mut g, "c1", &["1", "2"]).is_ok());
        assert!(page(&mut g, "c2", &["3", "4"]).is_ok());
        // Overlap with something new is progress, not a cycle.
        assert!(page(&mut g, "c3", &["4", "5"]).is_ok());
        let cycle = page(&mut g, "c4", &["1", "2"]).expect_err("the first page again");
        assert!(cycle.contains("listed already"), "{cycle}");
        // Records without ids prove nothing either way.
        assert!(CursorGuard::new(None).next(true, Some("x".into()), 2, [""; 0]).is_ok());
    }

    #[test]
    fn only_the_most_recent_ids_are_remembered() {
        let mut g = CursorGuard::new(None);
        for n in 0..=REMEMBERED_IDS {
            assert!(g.remember(u32::try_from(n).expect("small")));
        }
        assert_eq!(g.ids.len(), REMEMBERED_IDS);
        assert!(g.remember(0), "the oldest was forgotten");
        assert!(!g.remember(u32::try_from(REMEMBERED_IDS).expect("small")));
    }
}
