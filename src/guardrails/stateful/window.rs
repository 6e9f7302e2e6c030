//! Threshold and sequence rules: the events of a group that fall within one sliding window.

use super::{Entry, Evidence, State, group, insert_sorted, take};

/// What a threshold rule needs within one window.
#[derive(Debug, Clone, Copy)]
pub struct Need<'a> {
    /// Events, when `minimums` is empty.
    pub count: usize,
    /// Distinct values per `distinct` field (the entries' `v`, in the same order).
    pub minimums: &'a [usize],
    pub window_ms: i64,
}

impl State {
    /// Records `entry` for a threshold rule; the evidence when `need` is now met within one
    /// window. The group forgets what it reported.
    ///
    /// When counting distinct values, an entry whose values equal an older entry's replaces
    /// it: every window that ends at or after the newer one and held the older one holds the
    /// newer one too, so the counts those windows reach are unchanged, and a group keeps one
    /// entry per combination of values instead of one per event.
    pub fn threshold(&mut self, rule: &str, key: &str, entry: Entry, need: &Need<'_>) -> Option<Evidence> {
        let now = self.processed;
        let groups = self.threshold_groups(rule);
        let group = group(groups, key, |g| g.touched);
        group.touched = now;
        if group.entries.iter().any(|e| e.id == entry.id) {
            return None;
        }
        let distinct = !need.minimums.is_empty();
        if distinct && let Some(same) = group.entries.iter().position(|e| e.v == entry.v && e.t <= entry.t) {
            group.entries.remove(same);
        }
        let t_new = entry.t;
        let most = need.minimums.iter().copied().max().unwrap_or(need.count);
        insert_sorted(&mut group.entries, entry, most.saturating_mul(4).clamp(64, 4096));
        let window_ms = need.window_ms;
        // Only windows that contain the new entry can have changed.
        let ends: Vec<i64> = group
            .entries
            .iter()
            .filter(|e| e.t >= t_new && e.t - t_new <= window_ms)
            .map(|e| e.t)
            .collect();
        for end in ends {
            let inside: Vec<usize> = (0..group.entries.len())
                .filter(|&i| {
                    let t = group.entries[i].t;
                    t <= end && end - t <= window_ms
                })
                .collect();
            let reached = if distinct {
                need.minimums.iter().enumerate().all(|(field, &min)| {
                    let mut values: Vec<u64> = inside
                        .iter()
                        .filter_map(|&i| group.entries[i].v.get(field).copied())
                        .collect();
                    values.sort_unstable();
                    values.dedup();
                    values.len() >= min
                })
            } else {
                inside.len() >= need.count
            };
            if reached {
                return Some(take(&mut group.entries, &inside));
            }
        }
        None
    }

    /// Records an event for a sequence rule (as a `first` step, a `then` step or both); the
    /// evidence when a `then` event follows at least `first_count` `first` events within
    /// `window`. The group forgets what it reported.
    #[allow(clippy::too_many_arguments)]
    pub fn sequence(
        &mut self,
        rule: &str,
        key: &str,
        entry: Entry,
        is_first: bool,
        is_then: bool,
        first_count: usize,
        window_ms: i64,
    ) -> Option<Evidence> {
        let now = self.processed;
        let groups = self.sequence_groups(rule);
        let group = group(groups, key, |g| g.touched);
        group.touched = now;
        let t_new = entry.t;
        if is_first && !group.first.iter().any(|e| e.id == entry.id) {
            insert_sorted(
                &mut group.first,
                entry.clone(),
                first_count.saturating_mul(4).clamp(64, 4096),
            );
        }
        if is_then && !group.then.iter().any(|e| e.id == entry.id) {
            insert_sorted(&mut group.then, entry.clone(), 16);
        }
        // A new `then` closes a sequence ending at it; a new (possibly older) `first` may
        // complete one for a `then` already seen.
        let candidates: Vec<usize> = (0..group.then.len())
            .filter(|&i| {
                let s = &group.then[i];
                if is_then && s.id == entry.id {
                    return true;
                }
                is_first && s.t >= t_new && s.t - t_new <= window_ms
            })
            .collect();
        for i in candidates {
            let end = group.then[i].clone();
            let firsts: Vec<usize> = (0..group.first.len())
                .filter(|&j| {
                    let f = &group.first[j];
                    f.id != end.id && f.t <= end.t && end.t - f.t <= window_ms
                })
                .collect();
            if firsts.len() >= first_count {
                let mut evidence = take(&mut group.first, &firsts);
                group.then.retain(|e| e.id != end.id);
                evidence.push(end);
                return Some(evidence);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::super::fingerprint;
    use super::*;

    const MIN: i64 = 60_000;

    fn e(t: i64, id: &str, values: &[&str]) -> Entry {
        Entry {
            t,
            id: id.into(),
            v: values.iter().map(|v| fingerprint(v)).collect(),
        }
    }

    fn five_distinct() -> Need<'static> {
        Need {
            count: 5,
            minimums: &[5],
            window_ms: 30 * MIN,
        }
    }

    #[test]
    fn a_threshold_counts_distinct_values_within_the_window_in_any_arrival_order() {
        let mut s = State::default();
        let need = five_distinct();
        // Newest first, as a backfill arrives.
        for i in (0..4).rev() {
            let ip = format!("10.0.0.{i}");
            assert!(
                s.threshold("r", "u", e(i * MIN, &format!("e{i}"), &[&ip]), &need)
                    .is_none()
            );
        }
        // A repeat of an address does not count twice; a repeat of an id not at all.
        assert!(s.threshold("r", "u", e(MIN, "e1", &["10.0.0.1"]), &need).is_none());
        assert!(s.threshold("r", "u", e(5 * MIN, "e5", &["10.0.0.1"]), &need).is_none());
        let fired = s
            .threshold("r", "u", e(6 * MIN, "e6", &["10.0.0.9"]), &need)
            .expect("fires");
        // e5 replaced e1 (same address, later): one entry per address.
        let ids: Vec<&str> = fired.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["e0", "e2", "e3", "e5", "e6"]);
        assert!(s.threshold("r", "u", e(7 * MIN, "e7", &["10.0.0.8"]), &need).is_none());
    }

    #[test]
    fn a_threshold_spread_wider_than_the_window_does_not_fire() {
        let mut s = State::default();
        for i in 0..10 {
            let ip = format!("10.0.0.{i}");
            let entry = e(i * 10 * MIN, &format!("e{i}"), &[&ip]);
            assert!(s.threshold("r", "u", entry, &five_distinct()).is_none());
        }
    }

    #[test]
    fn two_distinct_counts_must_both_be_reached() {
        let need = Need {
            count: 3,
            minimums: &[3, 2],
            window_ms: 240 * MIN,
        };
        // Three countries with one user agent: not enough.
        let mut s = State::default();
        for (i, country) in ["DE", "US", "BR"].iter().enumerate() {
            let entry = e(i as i64 * MIN, &format!("a{i}"), &[country, "Firefox"]);
            assert!(s.threshold("r", "u", entry, &need).is_none());
        }
        // A second agent in one of them completes it.
        let fired = s
            .threshold("r", "u", e(4 * MIN, "a4", &["DE", "curl/8.0"]), &need)
            .expect("fires");
        assert_eq!(fired.len(), 4);
        // Two countries and two agents: not enough either.
        let mut s = State::default();
        for (i, (country, agent)) in [("DE", "Firefox"), ("US", "curl"), ("DE", "curl")].iter().enumerate() {
            let entry = e(i as i64 * MIN, &format!("b{i}"), &[country, agent]);
            assert!(s.threshold("r", "u", entry, &need).is_none());
        }
    }

    #[test]
    fn counting_events_fires_at_the_count_and_forgets_what_it_reported() {
        let need = Need {
            count: 3,
            minimums: &[],
            window_ms: 60 * MIN,
        };
        let mut s = State::default();
        assert!(s.threshold("r", "u", e(0, "a", &[]), &need).is_none());
        assert!(s.threshold("r", "u", e(MIN, "b", &[]), &need).is_none());
        assert_eq!(
            s.threshold("r", "u", e(2 * MIN, "c", &[]), &need).map(|v| v.len()),
            Some(3)
        );
        assert!(s.threshold("r", "u", e(3 * MIN, "d", &[]), &need).is_none());
    }

    #[test]
    fn a_sequence_fires_when_the_success_arrives_before_its_failures() {
        let mut s = State::default();
        let window = 30 * MIN;
        assert!(
            s.sequence("r", "u", e(10 * MIN, "ok", &[]), false, true, 3, window)
                .is_none()
        );
        assert!(
            s.sequence("r", "u", e(9 * MIN, "f1", &[]), true, false, 3, window)
                .is_none()
        );
        assert!(
            s.sequence("r", "u", e(9 * MIN, "f2", &[]), true, false, 3, window)
                .is_none()
        );
        let fired = s
            .sequence("r", "u", e(8 * MIN, "f3", &[]), true, false, 3, window)
            .expect("fires");
        assert_eq!(fired.last().map(|e| e.id.as_str()), Some("ok"));
        assert_eq!(fired.len(), 4);
    }
}
