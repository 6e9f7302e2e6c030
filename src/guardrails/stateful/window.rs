//! Threshold and sequence rules: the events of a group that fall within one sliding window.

use super::{Entry, Evidence, Fingerprints, MAX_EVIDENCE, State, drops_at_once, group, holds, insert_sorted, take};

/// What a threshold rule needs within one window.
#[derive(Debug, Clone, Copy)]
pub struct Need<'a> {
    /// Events, when `minimums` is empty.
    pub count: usize,
    /// Distinct values per `distinct` field (the entries' `v`, in the same order).
    pub minimums: &'a [usize],
    pub window_ms: i64,
}

/// Whether `entries` hold at least `min` distinct values of distinct field `field`.
fn at_least_distinct(entries: &[Entry], field: usize, min: usize) -> bool {
    let value = |e: &Entry| e.v.get(field).copied();
    if entries.len() < min {
        return false;
    }
    // A window holds a few entries (one per combination of values): up to 16, comparing each
    // with the ones before it costs least; up to 64, sorting a copy on the stack.
    if entries.len() <= 16 {
        let mut seen = 0;
        for (i, e) in entries.iter().enumerate() {
            if let Some(v) = value(e)
                && !entries[..i].iter().any(|p| value(p) == Some(v))
            {
                seen += 1;
                if seen >= min {
                    return true;
                }
            }
        }
        return false;
    }
    let mut stack = [0u64; 64];
    let mut heap = Vec::new();
    let values: &mut [u64] = if entries.len() <= stack.len() {
        let mut n = 0;
        for v in entries.iter().filter_map(value) {
            stack[n] = v;
            n += 1;
        }
        &mut stack[..n]
    } else {
        heap.extend(entries.iter().filter_map(value));
        &mut heap
    };
    values.sort_unstable();
    let distinct = values.len().min(1) + values.windows(2).filter(|w| w[0] != w[1]).count();
    distinct >= min
}

/// Whether any window ending at an entry of `ends` can hold `minimums` distinct values: those
/// windows lie within one run of entries (from the first one's start to the last one's end),
/// and no window holds more distinct values than the run. Most groups never come near their
/// minimums (a person active from one or two countries), so one count of the run answers for
/// every window — which, when a backfill arrives newest first and each entry is older than
/// the rest, is every window of the group.
fn may_reach(entries: &[Entry], ends: std::ops::Range<usize>, window_ms: i64, minimums: &[usize]) -> bool {
    if ends.is_empty() {
        return false;
    }
    let (first, last) = (entries[ends.start].t, entries[ends.end - 1].t);
    let run = &entries[entries.partition_point(|e| first - e.t > window_ms)..entries.partition_point(|e| e.t <= last)];
    minimums
        .iter()
        .enumerate()
        .all(|(field, &min)| at_least_distinct(run, field, min))
}

impl State {
    /// Records the event `(t, id)`, with the fingerprints `values` of its `distinct` fields,
    /// for a threshold rule; the evidence when `need` is now met within one window. The group
    /// forgets what it reported.
    ///
    /// When counting distinct values, an entry whose values equal an older entry's replaces
    /// it: every window that ends at or after the newer one and held the older one holds the
    /// newer one too, so the counts those windows reach are unchanged, and a group keeps one
    /// entry per combination of values instead of one per event. When it replaces the newest
    /// entry nothing can have changed (its window, a superset, was judged already), so the
    /// common case — a person's next event from the same place and client — costs a lookup.
    pub fn threshold(
        &mut self,
        rule: &str,
        key: &str,
        (t, id): (i64, &str),
        values: &[u64],
        need: &Need<'_>,
    ) -> Option<Evidence> {
        let now = self.processed;
        let groups = self.threshold_groups(rule);
        let group = group(groups, key, |g| g.touched);
        group.touched = now;
        let cap = list_cap(need.minimums.iter().copied().max().unwrap_or(need.count));
        // A backfill pages newest first, so a busy group is full and each new entry older than
        // all it holds: kept, it would be the one dropped at once. Nothing changes then (an
        // entry older than all others neither is one of them nor replaces one), and no window
        // can be newly reached (each window of what is held was judged when its last change
        // came), so the entry is not even made.
        if drops_at_once(&group.entries, t, cap) || holds(&group.entries, t, id) {
            return None;
        }
        let distinct = !need.minimums.is_empty();
        if distinct {
            if let Some(last) = group.entries.last_mut()
                && last.v.as_slice() == values
                && last.t <= t
            {
                last.t = t;
                last.id.clear();
                last.id.push_str(id);
                return None;
            }
            let older = group.entries.partition_point(|e| e.t <= t);
            if let Some(same) = group.entries[..older].iter().position(|e| e.v.as_slice() == values) {
                group.entries.remove(same);
            }
        }
        let entry = Entry {
            t,
            id: id.to_string(),
            v: Fingerprints::from_slice(values),
        };
        let t_new = entry.t;
        insert_sorted(&mut group.entries, entry, cap);
        let window_ms = need.window_ms;
        let entries = &group.entries;
        // Entries are sorted by time, so the windows that contain the new entry end at a run
        // of entries, and each window is a run too: no index lists to build.
        let ends = entries.partition_point(|e| e.t < t_new)..entries.partition_point(|e| e.t - t_new <= window_ms);
        if distinct && !may_reach(entries, ends.clone(), window_ms, need.minimums) {
            return None;
        }
        for end in ends {
            let end_t = entries[end].t;
            let inside =
                entries.partition_point(|e| end_t - e.t > window_ms)..entries.partition_point(|e| e.t <= end_t);
            let reached = if distinct {
                let window = &entries[inside.clone()];
                need.minimums
                    .iter()
                    .enumerate()
                    .all(|(field, &min)| at_least_distinct(window, field, min))
            } else {
                inside.len() >= need.count
            };
            if reached {
                let mut evidence: Vec<Entry> = group.entries.drain(inside).collect();
                if evidence.len() > MAX_EVIDENCE {
                    evidence.drain(..evidence.len() - MAX_EVIDENCE);
                }
                return Some(evidence);
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
        (t_new, id): (i64, &str),
        is_first: bool,
        is_then: bool,
        first_count: usize,
        window_ms: i64,
    ) -> Option<Evidence> {
        let now = self.processed;
        let groups = self.sequence_groups(rule);
        let group = group(groups, key, |g| g.touched);
        group.touched = now;
        let entry = || Entry {
            t: t_new,
            id: id.to_string(),
            v: Fingerprints::new(),
        };
        let known_then = is_then && holds(&group.then, t_new, id);
        let cap = list_cap(first_count);
        // A `first` the list already holds, or one a full list would drop at once (a backfill
        // pages newest first), changes nothing.
        let new_first = is_first && !holds(&group.first, t_new, id) && !drops_at_once(&group.first, t_new, cap);
        if new_first {
            insert_sorted(&mut group.first, entry(), cap);
        }
        // A `then` closes a sequence ending at it; it is kept only when it does not.
        if is_then {
            if let Some(firsts) = closed(&group.first, (t_new, id), first_count, window_ms) {
                let mut evidence = take(&mut group.first, &firsts);
                if known_then {
                    group.then.retain(|e| !(e.t == t_new && e.id == id));
                }
                evidence.push(entry());
                return Some(evidence);
            }
            if !known_then && !drops_at_once(&group.then, t_new, MAX_THEN) {
                insert_sorted(&mut group.then, entry(), MAX_THEN);
            }
        }
        // A new (possibly older) `first` may complete one for a `then` already seen.
        if is_first {
            let candidates =
                group.then.partition_point(|s| s.t < t_new)..group.then.partition_point(|s| s.t - t_new <= window_ms);
            for i in candidates {
                let end = &group.then[i];
                if let Some(firsts) = closed(&group.first, (end.t, &end.id), first_count, window_ms) {
                    let mut evidence = take(&mut group.first, &firsts);
                    evidence.push(group.then.remove(i));
                    return Some(evidence);
                }
            }
        }
        None
    }
}

/// `then` events a sequence group keeps waiting for their `first`s.
const MAX_THEN: usize = 16;

/// How many entries a group keeps for a rule that needs `most` of them in one window.
fn list_cap(most: usize) -> usize {
    most.saturating_mul(4).clamp(64, 4096)
}

/// The indices of the `first` events (sorted by time) in the window that ends at the `then`
/// event `(t, id)`, other than that event itself, when there are at least `count`.
fn closed(first: &[Entry], (t, id): (i64, &str), count: usize, window_ms: i64) -> Option<Vec<usize>> {
    let inside = first.partition_point(|f| t - f.t > window_ms)..first.partition_point(|f| f.t <= t);
    let itself = |f: &Entry| f.t == t && f.id == id;
    let n = inside.len() - first[inside.clone()].iter().filter(|f| itself(f)).count();
    (n >= count).then(|| inside.filter(|&j| !itself(&first[j])).collect())
}

#[cfg(test)]
mod tests {
    use super::super::{RuleState, fingerprint};
    use super::*;

    const MIN: i64 = 60_000;

    fn e(t: i64, id: &str, values: &[&str]) -> Entry {
        Entry {
            t,
            id: id.into(),
            v: values.iter().map(|v| fingerprint(v)).collect(),
        }
    }

    /// Records `entry` for threshold rule `r`, group `u`.
    fn count(s: &mut State, entry: Entry, need: &Need<'_>) -> Option<Evidence> {
        s.threshold("r", "u", (entry.t, &entry.id), &entry.v, need)
    }

    proptest::proptest! {
        #[test]
        fn distinct_values_are_counted_as_a_set_counts_them(
            values in proptest::collection::vec(proptest::option::of(0u64..40), 0..100),
            min in 1usize..50,
        ) {
            let entries: Vec<Entry> = values
                .iter()
                .enumerate()
                .map(|(i, v)| Entry { t: i as i64, id: i.to_string(), v: v.iter().copied().collect() })
                .collect();
            let set: std::collections::HashSet<u64> = values.iter().flatten().copied().collect();
            proptest::prop_assert_eq!(at_least_distinct(&entries, 0, min), set.len() >= min);
        }
    }

    proptest::proptest! {
        /// The run's count answers "no" only when no window ending at one of the ends could
        /// reach the minimums, counted window by window.
        #[test]
        fn a_run_that_cannot_reach_the_minimums_has_no_window_that_does(
            mut points in proptest::collection::vec((0i64..100, 0u64..6, 0u64..4), 1..40),
            from in 0usize..40,
            span in 0usize..40,
            minimums in proptest::collection::vec(1usize..5, 1..3),
            window_ms in 0i64..40,
        ) {
            points.sort_unstable();
            let entries: Vec<Entry> = points
                .iter()
                .enumerate()
                .map(|(i, &(t, a, b))| Entry { t, id: i.to_string(), v: Fingerprints::from_slice(&[a, b]) })
                .collect();
            let ends = from.min(entries.len())..(from + span).min(entries.len());
            let window_reaches = ends.clone().any(|end| {
                let end_t = entries[end].t;
                let inside = &entries[entries.partition_point(|e| end_t - e.t > window_ms)
                    ..entries.partition_point(|e| e.t <= end_t)];
                minimums.iter().enumerate().all(|(f, &min)| at_least_distinct(inside, f, min))
            });
            if window_reaches {
                proptest::prop_assert!(may_reach(&entries, ends, window_ms, &minimums));
            }
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
            assert!(count(&mut s, e(i * MIN, &format!("e{i}"), &[&ip]), &need).is_none());
        }
        // A repeat of an address does not count twice; a repeat of an id not at all.
        assert!(count(&mut s, e(MIN, "e1", &["10.0.0.1"]), &need).is_none());
        assert!(count(&mut s, e(5 * MIN, "e5", &["10.0.0.1"]), &need).is_none());
        let fired = count(&mut s, e(6 * MIN, "e6", &["10.0.0.9"]), &need).expect("fires");
        // e5 replaced e1 (same address, later): one entry per address.
        let ids: Vec<&str> = fired.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["e0", "e2", "e3", "e5", "e6"]);
        assert!(count(&mut s, e(7 * MIN, "e7", &["10.0.0.8"]), &need).is_none());
    }

    #[test]
    fn a_threshold_spread_wider_than_the_window_does_not_fire() {
        let mut s = State::default();
        for i in 0..10 {
            let ip = format!("10.0.0.{i}");
            let entry = e(i * 10 * MIN, &format!("e{i}"), &[&ip]);
            assert!(count(&mut s, entry, &five_distinct()).is_none());
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
            assert!(count(&mut s, entry, &need).is_none());
        }
        // A second agent in one of them completes it.
        let fired = count(&mut s, e(4 * MIN, "a4", &["DE", "curl/8.0"]), &need).expect("fires");
        assert_eq!(fired.len(), 4);
        // Two countries and two agents: not enough either.
        let mut s = State::default();
        for (i, (country, agent)) in [("DE", "Firefox"), ("US", "curl"), ("DE", "curl")].iter().enumerate() {
            let entry = e(i as i64 * MIN, &format!("b{i}"), &[country, agent]);
            assert!(count(&mut s, entry, &need).is_none());
        }
    }

    /// What `threshold` decides, written plainly: every new entry is inserted (and the oldest
    /// dropped past `cap`), then every window holding it is counted.
    fn oracle(entries: &mut Vec<Entry>, entry: Entry, need: &Need<'_>) -> Option<Vec<String>> {
        if entries.iter().any(|e| e.t == entry.t && e.id == entry.id) {
            return None;
        }
        let distinct = !need.minimums.is_empty();
        if distinct {
            if let Some(last) = entries.last_mut()
                && last.v == entry.v
                && last.t <= entry.t
            {
                *last = entry;
                return None;
            }
            if let Some(same) = entries.iter().position(|e| e.v == entry.v && e.t <= entry.t) {
                entries.remove(same);
            }
        }
        let cap = list_cap(need.minimums.iter().copied().max().unwrap_or(need.count));
        let t_new = entry.t;
        plain_insert(entries, entry, cap);
        for end in 0..entries.len() {
            let end_t = entries[end].t;
            if end_t < t_new || end_t - t_new > need.window_ms {
                continue;
            }
            let inside =
                entries.partition_point(|e| end_t - e.t > need.window_ms)..entries.partition_point(|e| e.t <= end_t);
            let reached = if distinct {
                let window = &entries[inside.clone()];
                (0..need.minimums.len()).all(|f| at_least_distinct(window, f, need.minimums[f]))
            } else {
                inside.len() >= need.count
            };
            if reached {
                let evidence: Vec<String> = entries.drain(inside).map(|e| e.id).collect();
                return Some(evidence[evidence.len().saturating_sub(MAX_EVIDENCE)..].to_vec());
            }
        }
        None
    }

    proptest::proptest! {
        /// Whatever the arrival order — newest first as a backfill pages, or shuffled — and
        /// however full the group, `threshold` decides as the plain reading does and holds
        /// the same entries.
        #[test]
        fn a_threshold_decides_as_the_plain_reading_in_any_order(
            times in proptest::collection::vec((0i64..400, 0u64..5), 0..300),
            newest_first in proptest::bool::ANY,
            count in 2usize..30,
            distinct in proptest::option::of(2usize..5),
            window_min in 1i64..60,
        ) {
            let mut events: Vec<Entry> = times
                .iter()
                .enumerate()
                .map(|(i, &(t, v))| Entry { t: t * MIN / 4, id: format!("e{i}"), v: if distinct.is_some() { Fingerprints::from_slice(&[v]) } else { Fingerprints::new() } })
                .collect();
            if newest_first {
                events.sort_by_key(|e| std::cmp::Reverse(e.t));
            }
            let minimums: Vec<usize> = distinct.into_iter().collect();
            let need = Need { count, minimums: &minimums, window_ms: window_min * MIN };
            let (mut s, mut plain) = (State::default(), Vec::new());
            for event in events {
                let got = count_ids(&mut s, event.clone(), &need);
                proptest::prop_assert_eq!(got, oracle(&mut plain, event, &need));
            }
            let held = match s.rules.get("r") {
                Some(RuleState::Threshold { groups }) => groups.get("u").map(|g| g.entries.clone()).unwrap_or_default(),
                _ => Vec::new(),
            };
            proptest::prop_assert_eq!(held, plain);
        }
    }

    /// Inserts `entry` keeping time order, then drops the oldest past `cap`.
    fn plain_insert(entries: &mut Vec<Entry>, entry: Entry, cap: usize) {
        let at = entries.partition_point(|e| e.t <= entry.t);
        entries.insert(at, entry);
        if entries.len() > cap {
            entries.drain(..entries.len() - cap);
        }
    }

    /// What `sequence` decides, written plainly: every step is inserted (the oldest dropped
    /// past the caps), a `then` is closed against the `first`s, and the held `then`s within
    /// the window after a `first` are tried again.
    fn sequence_oracle(
        (first, then): &mut (Vec<Entry>, Vec<Entry>),
        entry: &Entry,
        (is_first, is_then): (bool, bool),
        count: usize,
        window_ms: i64,
    ) -> Option<Vec<String>> {
        let ids = |evidence: Vec<Entry>| evidence.into_iter().map(|e| e.id).collect::<Vec<_>>();
        let has = |list: &[Entry]| list.iter().any(|e| e.t == entry.t && e.id == entry.id);
        let known_then = is_then && has(then);
        if is_first && !has(first) {
            plain_insert(first, entry.clone(), count.saturating_mul(4).clamp(64, 4096));
        }
        if is_then {
            if let Some(firsts) = closed(first, (entry.t, &entry.id), count, window_ms) {
                let mut evidence = take(first, &firsts);
                then.retain(|e| !(e.t == entry.t && e.id == entry.id));
                evidence.push(entry.clone());
                return Some(ids(evidence));
            }
            if !known_then {
                plain_insert(then, entry.clone(), MAX_THEN);
            }
        }
        if is_first {
            for i in 0..then.len() {
                if then[i].t < entry.t || then[i].t - entry.t > window_ms {
                    continue;
                }
                if let Some(firsts) = closed(first, (then[i].t, &then[i].id), count, window_ms) {
                    let mut evidence = take(first, &firsts);
                    evidence.push(then.remove(i));
                    return Some(ids(evidence));
                }
            }
        }
        None
    }

    proptest::proptest! {
        /// Newest first or shuffled, with lists full or not, `sequence` decides as the plain
        /// reading does and holds the same steps.
        #[test]
        fn a_sequence_decides_as_the_plain_reading_in_any_order(
            steps in proptest::collection::vec((0i64..300, 0u8..3), 0..300),
            newest_first in proptest::bool::ANY,
            count in 1usize..20,
            window_min in 1i64..30,
        ) {
            let mut events: Vec<(Entry, (bool, bool))> = steps
                .iter()
                .enumerate()
                .map(|(i, &(t, kind))| (e(t * MIN / 4, &format!("e{i}"), &[]), (kind != 1, kind != 0)))
                .collect();
            if newest_first {
                events.sort_by_key(|(e, _)| std::cmp::Reverse(e.t));
            }
            let window_ms = window_min * MIN;
            let (mut s, mut plain) = (State::default(), (Vec::new(), Vec::new()));
            for (entry, (is_first, is_then)) in &events {
                let got = s
                    .sequence("r", "u", (entry.t, &entry.id), *is_first, *is_then, count, window_ms)
                    .map(|evidence| evidence.into_iter().map(|e| e.id).collect::<Vec<_>>());
                let want = sequence_oracle(&mut plain, entry, (*is_first, *is_then), count, window_ms);
                proptest::prop_assert_eq!(got, want);
            }
            let held = match s.rules.get("r") {
                Some(RuleState::Sequence { groups }) => groups.get("u").map(|g| (g.first.clone(), g.then.clone())).unwrap_or_default(),
                _ => (Vec::new(), Vec::new()),
            };
            proptest::prop_assert_eq!(held, plain);
        }
    }

    fn count_ids(s: &mut State, entry: Entry, need: &Need<'_>) -> Option<Vec<String>> {
        count(s, entry, need).map(|evidence| evidence.into_iter().map(|e| e.id).collect())
    }

    /// Three events within an hour.
    fn three_in_an_hour() -> Need<'static> {
        Need {
            count: 3,
            minimums: &[],
            window_ms: 60 * MIN,
        }
    }

    /// A group that holds `a` and, a minute later, `b`.
    fn a_then_b(need: &Need<'_>) -> State {
        let mut s = State::default();
        assert!(count(&mut s, e(0, "a", &[]), need).is_none());
        assert!(count(&mut s, e(MIN, "b", &[]), need).is_none());
        s
    }

    #[test]
    fn counting_events_fires_at_the_count_and_forgets_what_it_reported() {
        let need = three_in_an_hour();
        let mut s = a_then_b(&need);
        assert_eq!(count(&mut s, e(2 * MIN, "c", &[]), &need).map(|v| v.len()), Some(3));
        assert!(count(&mut s, e(3 * MIN, "d", &[]), &need).is_none());
    }

    #[test]
    fn an_event_seen_again_at_either_end_of_its_group_is_not_counted_twice() {
        let need = three_in_an_hour();
        let mut s = a_then_b(&need);
        // The group's oldest and its newest, delivered again.
        assert!(count(&mut s, e(0, "a", &[]), &need).is_none());
        assert!(count(&mut s, e(MIN, "b", &[]), &need).is_none());
        assert_eq!(
            count_ids(&mut s, e(2 * MIN, "c", &[]), &need),
            Some(vec!["a".into(), "b".into(), "c".into()])
        );
    }

    #[test]
    fn a_sequence_fires_when_the_success_arrives_before_its_failures() {
        let mut s = State::default();
        let window = 30 * MIN;
        assert!(s.sequence("r", "u", (10 * MIN, "ok"), false, true, 3, window).is_none());
        assert!(s.sequence("r", "u", (9 * MIN, "f1"), true, false, 3, window).is_none());
        assert!(s.sequence("r", "u", (9 * MIN, "f2"), true, false, 3, window).is_none());
        let fired = s
            .sequence("r", "u", (8 * MIN, "f3"), true, false, 3, window)
            .expect("fires");
        assert_eq!(fired.last().map(|e| e.id.as_str()), Some("ok"));
        assert_eq!(fired.len(), 4);
    }
}
