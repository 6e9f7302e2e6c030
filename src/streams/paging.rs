//! The guard every pager shares: a listing that says there is more must say where to
//! continue, and must never lead back to a cursor it already gave in the same pass (the same
//! cursor twice, or a cycle A → B → A), or the stream would repeat pages forever.

use std::collections::HashSet;

/// The cursors one pass through a listing has used.
#[derive(Debug, Default)]
pub(crate) struct CursorGuard {
    seen: HashSet<String>,
}

impl CursorGuard {
    /// A guard for a pass that starts at `start` (the resumed cursor, if any).
    pub(crate) fn new(start: Option<&str>) -> Self {
        Self {
            seen: start.into_iter().map(str::to_string).collect(),
        }
    }

    /// Checks the page just read: `None` when the listing is done, otherwise the cursor to
    /// continue from; an error (for the cycle to back off on) when it cannot continue safely.
    pub(crate) fn next(
        &mut self,
        has_more: bool,
        cursor: Option<String>,
        empty: bool,
    ) -> Result<Option<String>, String> {
        if !has_more {
            return Ok(None);
        }
        let Some(cursor) = cursor else {
            return Err("a page says has_more but gives no cursor to continue from".to_string());
        };
        if empty {
            return Err("an empty page says has_more; the cursor cannot advance".to_string());
        }
        if !self.seen.insert(cursor.clone()) {
            return Err(format!(
                "the cursor {cursor} came back in the same pass (repeated or cyclic paging); retrying later instead of looping"
            ));
        }
        Ok(Some(cursor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listing_ends_when_nothing_more_is_said() {
        let mut g = CursorGuard::new(None);
        assert_eq!(g.next(true, Some("a".into()), false), Ok(Some("a".into())));
        assert_eq!(g.next(false, None, true), Ok(None));
    }

    #[test]
    fn a_repeated_or_cyclic_cursor_and_a_missing_one_are_errors() {
        let mut g = CursorGuard::new(Some("start"));
        assert!(
            g.next(true, Some("start".into()), false).is_err(),
            "the same cursor again"
        );
        let mut g = CursorGuard::new(None);
        assert!(g.next(true, Some("a".into()), false).is_ok());
        assert!(g.next(true, Some("b".into()), false).is_ok());
        let cycle = g.next(true, Some("a".into()), false).expect_err("a → b → a");
        assert!(cycle.contains("came back"), "{cycle}");
        assert!(CursorGuard::new(None).next(true, None, false).is_err());
        assert!(CursorGuard::new(None).next(true, Some("x".into()), true).is_err());
    }
}
