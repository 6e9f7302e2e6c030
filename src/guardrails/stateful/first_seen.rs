//! First-seen rules: the values each group has shown, and which of them are new.

use super::{Seen, State, group};

/// How a first-seen rule keeps and reports its values.
#[derive(Debug, Clone, Copy)]
pub struct Keep {
    /// The group's earliest value is its baseline, not news.
    pub baseline_first: bool,
    /// Values per group; beyond it the least recently seen is forgotten.
    pub max_values: usize,
}

impl Default for Keep {
    fn default() -> Self {
        Self {
            baseline_first: true,
            max_values: 32,
        }
    }
}

impl State {
    /// Records `value` for a first-seen group at `(t, id)`; every value that is now known to
    /// be new and was not reported before: with a baseline, the values that appeared after
    /// the group's earliest one; without, every value. Order-free: a backfill that arrives
    /// newest first reports the same values as one in time order.
    pub fn first_seen(&mut self, rule: &str, key: &str, value: &str, (t, id): (i64, &str), keep: Keep) -> Vec<Seen> {
        let now = self.processed;
        let groups = self.first_seen_groups(rule);
        let group = group(groups, key, |g| g.touched);
        group.touched = now;
        match group.values.iter_mut().find(|s| s.value == value) {
            Some(seen) => {
                if t < seen.first_t {
                    // A backfill pages newest first: this happens for most events of a group.
                    seen.first_t = t;
                    seen.first_id.clear();
                    seen.first_id.push_str(id);
                }
                seen.last_t = seen.last_t.max(t);
            }
            None => {
                if group.values.len() >= keep.max_values
                    && let Some(oldest) = (0..group.values.len()).min_by_key(|&i| group.values[i].last_t)
                {
                    group.values.remove(oldest);
                }
                super::room(&mut group.values);
                group.values.push(Seen {
                    value: value.to_string(),
                    first_t: t,
                    first_id: id.to_string(),
                    last_t: t,
                    reported: false,
                });
            }
        }
        let baseline = if keep.baseline_first {
            match group.values.iter().map(|s| s.first_t).min() {
                Some(earliest) => Some(earliest),
                None => return Vec::new(),
            }
        } else {
            None
        };
        let mut out = Vec::new();
        for seen in &mut group.values {
            if !seen.reported && baseline.is_none_or(|b| seen.first_t > b) {
                seen.reported = true;
                out.push(seen.clone());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(seen: &[Seen]) -> Vec<&str> {
        seen.iter().map(|s| s.first_id.as_str()).collect()
    }

    #[test]
    fn first_seen_reports_the_later_value_whatever_the_arrival_order() {
        let keep = Keep::default();
        let mut forward = State::default();
        assert!(forward.first_seen("r", "u", "US", (1, "a"), keep).is_empty());
        assert!(forward.first_seen("r", "u", "US", (2, "b"), keep).is_empty());
        let new = forward.first_seen("r", "u", "BR", (3, "c"), keep);
        assert_eq!(ids(&new), ["c"]);
        assert!(forward.first_seen("r", "u", "BR", (4, "d"), keep).is_empty());

        let mut backward = State::default();
        assert!(backward.first_seen("r", "u", "BR", (3, "c"), keep).is_empty());
        let new = backward.first_seen("r", "u", "US", (2, "b"), keep);
        assert_eq!(ids(&new), ["c"]);
        let again = backward.first_seen("r", "u", "US", (1, "a"), keep);
        assert!(again.is_empty(), "reported once");
    }

    #[test]
    fn without_a_baseline_every_value_is_reported_once_including_the_first() {
        let keep = Keep {
            baseline_first: false,
            max_values: 2,
        };
        let mut s = State::default();
        assert_eq!(ids(&s.first_seen("r", "", "plugin-a", (1, "a"), keep)), ["a"]);
        assert!(s.first_seen("r", "", "plugin-a", (2, "b"), keep).is_empty());
        assert_eq!(ids(&s.first_seen("r", "", "plugin-b", (3, "c"), keep)), ["c"]);
        // A third value pushes out the least recently seen one, which is news again later.
        assert_eq!(ids(&s.first_seen("r", "", "plugin-c", (4, "d"), keep)), ["d"]);
        assert_eq!(ids(&s.first_seen("r", "", "plugin-a", (5, "e"), keep)), ["e"]);
    }
}
