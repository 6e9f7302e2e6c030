//! Velocity rules: where a group's events happened, and whether two consecutive ones are so
//! far apart, so soon, that nobody could have travelled between them.

use serde::{Deserialize, Serialize};

use super::{Entry, Fingerprints, State, group};

/// Places remembered per group (the oldest go first).
pub const MAX_POINTS: usize = 16;
/// Mean Earth radius (IUGG), km.
const EARTH_RADIUS_KM: f64 = 6371.0088;

/// Where and when one event happened, or a run of consecutive events at one place (see
/// [`State::velocity`]). Coordinates are kept in millionths of a degree (about 11 cm),
/// integers so the saved state compares exactly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Point {
    /// Event time, Unix milliseconds (of a run: its latest event).
    pub t: i64,
    pub id: String,
    pub lat: i32,
    pub lon: i32,
    /// The earliest event of a run, when later events at the same place were folded into
    /// this point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Since>,
}

/// The earliest event of a run of events at one place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Since {
    pub t: i64,
    pub id: String,
}

impl Point {
    /// The heap bytes its texts hold.
    pub(super) fn bytes(&self) -> usize {
        self.id.capacity() + self.since.as_ref().map_or(0, |s| s.id.capacity())
    }

    /// A point from degrees.
    pub fn new(t: i64, id: &str, latitude: f64, longitude: f64) -> Self {
        let micro = |deg: f64| (deg * 1e6).round() as i32;
        Self {
            t,
            id: id.to_string(),
            lat: micro(latitude),
            lon: micro(longitude),
            since: None,
        }
    }

    fn degrees(&self) -> (f64, f64) {
        (f64::from(self.lat) / 1e6, f64::from(self.lon) / 1e6)
    }

    /// The latest event of the point: where a leg to a later place starts.
    fn last(&self) -> (i64, &str) {
        (self.t, &self.id)
    }

    /// The earliest event of the point: where a leg from an earlier place ends.
    fn first(&self) -> (i64, &str) {
        self.since.as_ref().map_or(self.last(), |s| (s.t, &s.id))
    }

    /// Whether this point remembers the event `(t, id)`.
    fn holds(&self, t: i64, id: &str) -> bool {
        (self.t == t && self.id == id) || self.since.as_ref().is_some_and(|s| s.t == t && s.id == id)
    }
}

/// Two consecutive events of a group too far apart for the time between them.
#[derive(Debug, Clone, PartialEq)]
pub struct Leg {
    pub from: Entry,
    pub to: Entry,
    pub km: f64,
    /// Infinite when both happened at the same instant.
    pub kmh: f64,
}

/// What a velocity rule flags.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub min_km: f64,
    pub min_kmh: f64,
    pub window_ms: i64,
}

impl Limits {
    /// The leg from the event `from` at `a` to the later event `to` at `b`, when it is
    /// within the window, at least `min_km` long and needs at least `min_kmh`.
    fn judge(&self, (a, (from_t, from)): (&Point, (i64, &str)), (b, (to_t, to)): (&Point, (i64, &str))) -> Option<Leg> {
        let ms = to_t - from_t;
        if ms > self.window_ms || (a.lat, a.lon) == (b.lat, b.lon) {
            return None;
        }
        let km = distance_km(a.degrees(), b.degrees());
        let kmh = if ms <= 0 {
            f64::INFINITY
        } else {
            km / (ms as f64 / 3_600_000.0)
        };
        let entry = |t, id: &str| Entry {
            t,
            id: id.to_string(),
            v: Fingerprints::new(),
        };
        (km >= self.min_km && kmh >= self.min_kmh).then(|| Leg {
            from: entry(from_t, from),
            to: entry(to_t, to),
            km,
            kmh,
        })
    }

    /// Between consecutive points: from the earlier one's latest event to the later one's
    /// earliest.
    fn between(&self, a: &Point, b: &Point) -> Option<Leg> {
        self.judge((a, a.last()), (b, b.first()))
    }

    /// How long a run of events at one place may last and still be kept as one point (see
    /// [`State::velocity`]).
    fn fold_ms(&self) -> f64 {
        self.min_km / self.min_kmh * 3_600_000.0
    }
}

/// Great-circle distance in km between two points given in degrees (haversine).
pub fn distance_km((lat1, lon1): (f64, f64), (lat2, lon2): (f64, f64)) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * a.sqrt().min(1.0).asin()
}

impl State {
    /// Records where a group's event happened; the legs it forms with its neighbours in
    /// time (the event before it and the one after, within the window) that are at least
    /// `min_km` long and need at least `min_kmh`. Order-free: each pair of neighbours is
    /// judged once, when the later-arriving of the two is recorded.
    ///
    /// A person's events mostly come from one place, so consecutive events at one place
    /// within `min_km / min_kmh` hours of the run's first are kept as one point (its
    /// earliest and latest event). Nothing is lost: a leg from an earlier place ends at the
    /// run's earliest event and a leg to a later place starts at its latest, as they would
    /// between single events; and an event arriving late inside the run had events at that
    /// place before and after it, each at most the run's length away, so it is impossible
    /// exactly when it is `min_km` from that place. It is judged against the run and not
    /// kept.
    pub fn velocity(&mut self, rule: &str, key: &str, point: Point, limits: Limits) -> Vec<Leg> {
        let now = self.processed;
        let groups = self.velocity_groups(rule);
        let track = group(groups, key, |g| g.touched);
        track.touched = now;
        if track.points.iter().any(|p| p.holds(point.t, &point.id)) {
            return Vec::new();
        }
        let at = track.points.partition_point(|p| p.t <= point.t);
        // Later than every point, at the place of the latest: extends its run.
        let extends = |last: &Point| {
            (last.lat, last.lon) == (point.lat, point.lon) && ((point.t - last.first().0) as f64) <= limits.fold_ms()
        };
        if at == track.points.len()
            && let Some(last) = track.points.last_mut()
            && extends(last)
        {
            let since = last.since.take().unwrap_or_else(|| Since {
                t: last.t,
                id: std::mem::take(&mut last.id),
            });
            *last = Point {
                since: Some(since),
                ..point
            };
            return Vec::new();
        }
        if let Some(run) = track.points.get(at)
            && run.first().0 <= point.t
        {
            // Inside a run (which ends after it): judged against the run's latest event.
            return limits
                .judge((&point, point.last()), (run, run.last()))
                .into_iter()
                .collect();
        }
        if at == 0 && track.points.len() >= MAX_POINTS {
            // Older than all a full track holds (a backfill pages newest first): judged
            // against its next neighbour and not kept, being the one the cap would drop.
            return track
                .points
                .first()
                .and_then(|next| limits.between(&point, next))
                .into_iter()
                .collect();
        }
        super::room(&mut track.points);
        track.points.insert(at, point);
        let mut legs = Vec::new();
        if at > 0 {
            legs.extend(limits.between(&track.points[at - 1], &track.points[at]));
        }
        if let Some(next) = track.points.get(at + 1) {
            legs.extend(limits.between(&track.points[at], next));
        }
        if track.points.len() > MAX_POINTS {
            let excess = track.points.len() - MAX_POINTS;
            track.points.drain(..excess);
        }
        legs
    }
}

#[cfg(test)]
mod tests {
    use super::super::RuleState;
    use super::*;

    const HOUR: i64 = 3_600_000;
    const LONDON: (f64, f64) = (51.5072, -0.1276);
    const NEW_YORK: (f64, f64) = (40.7128, -74.0060);
    const PARIS: (f64, f64) = (48.8566, 2.3522);
    const ROME: (f64, f64) = (41.9028, 12.4964);
    const MIN: i64 = 60_000;

    fn limits() -> Limits {
        Limits {
            min_km: 1000.0,
            min_kmh: 800.0,
            window_ms: 24 * HOUR,
        }
    }

    fn at(t: i64, id: &str, (lat, lon): (f64, f64)) -> Point {
        Point::new(t, id, lat, lon)
    }

    #[test]
    fn the_distance_between_cities_is_the_great_circle() {
        let km = distance_km(LONDON, NEW_YORK);
        assert!((km - 5570.0).abs() < 10.0, "{km}");
        assert!(distance_km(PARIS, PARIS) < 1e-9);
    }

    #[test]
    fn london_then_new_york_an_hour_later_is_impossible_and_ten_hours_later_is_not() {
        let mut s = State::default();
        assert!(s.velocity("r", "ann", at(0, "a", LONDON), limits()).is_empty());
        let legs = s.velocity("r", "ann", at(HOUR, "b", NEW_YORK), limits());
        assert_eq!(legs.len(), 1);
        assert_eq!((legs[0].from.id.as_str(), legs[0].to.id.as_str()), ("a", "b"));
        assert!(legs[0].kmh > 5000.0, "{}", legs[0].kmh);

        let mut slow = State::default();
        assert!(slow.velocity("r", "ann", at(0, "a", LONDON), limits()).is_empty());
        let legs = slow.velocity("r", "ann", at(10 * HOUR, "b", NEW_YORK), limits());
        assert!(legs.is_empty(), "557 km/h is a flight: {legs:?}");
    }

    fn points(s: &State) -> Vec<Point> {
        match &s.rules["r"] {
            RuleState::Velocity { groups } => groups["ann"].points.clone(),
            other => panic!("{other:?}"),
        }
    }

    /// Events `a`..`d` every 20 minutes in London for an hour: within 1000/800 h = 75 min,
    /// so one point.
    fn london_for_an_hour() -> State {
        let mut s = State::default();
        for (i, id) in ["a", "b", "c", "d"].iter().enumerate() {
            assert!(
                s.velocity("r", "ann", at(i as i64 * 20 * MIN, id, LONDON), limits())
                    .is_empty()
            );
        }
        s
    }

    #[test]
    fn events_at_one_place_within_the_fold_span_keep_one_point_and_lose_no_leg() {
        let mut s = london_for_an_hour();
        let folded = points(&s);
        assert_eq!(folded.len(), 1);
        let since = folded[0].since.as_ref().map(|s| (s.t, s.id.as_str()));
        assert_eq!((folded[0].id.as_str(), folded[0].t, since), ("d", HOUR, Some((0, "a"))));
        // A repeat of the first or the latest event is known.
        assert!(s.velocity("r", "ann", at(0, "a", LONDON), limits()).is_empty());
        assert!(s.velocity("r", "ann", at(HOUR, "d", NEW_YORK), limits()).is_empty());
        // New York arriving late, 5 minutes after the first London event: London before and
        // after it, so impossible; judged against the latest London event, 55 minutes on.
        let legs = s.velocity("r", "ann", at(5 * MIN, "ny", NEW_YORK), limits());
        assert_eq!(legs.len(), 1);
        assert_eq!((legs[0].from.id.as_str(), legs[0].to.id.as_str()), ("ny", "d"));
        assert_eq!(points(&s).len(), 1, "an event inside a run is not kept");
        // Past the span, a new point starts.
        let mut s = State::default();
        assert!(s.velocity("r", "ann", at(0, "a", LONDON), limits()).is_empty());
        assert!(s.velocity("r", "ann", at(2 * HOUR, "b", LONDON), limits()).is_empty());
        assert_eq!(points(&s).len(), 2);
    }

    #[test]
    fn an_event_arriving_late_before_a_run_is_judged_against_the_runs_first_event() {
        let mut s = london_for_an_hour();
        // Rome (1430 km) an hour before the first London event: 1430 km/h to it, though only
        // 715 km/h to the latest.
        let legs = s.velocity("r", "ann", at(-HOUR, "rome", ROME), limits());
        let pairs: Vec<(&str, &str)> = legs.iter().map(|l| (l.from.id.as_str(), l.to.id.as_str())).collect();
        assert_eq!(pairs, [("rome", "a")]);
        assert!((legs[0].kmh - 1434.0).abs() < 20.0, "{}", legs[0].kmh);
        // After the run, a leg starts at its latest event: Rome 2 h after it is possible.
        assert!(s.velocity("r", "ann", at(3 * HOUR, "rome2", ROME), limits()).is_empty());
    }

    #[test]
    fn a_short_hop_is_never_impossible_however_fast() {
        let mut s = State::default();
        assert!(s.velocity("r", "ann", at(0, "a", LONDON), limits()).is_empty());
        assert!(
            s.velocity("r", "ann", at(60_000, "b", PARIS), limits()).is_empty(),
            "344 km"
        );
    }

    #[test]
    fn an_event_arriving_late_is_judged_against_both_neighbours() {
        let mut s = State::default();
        assert!(s.velocity("r", "ann", at(0, "a", LONDON), limits()).is_empty());
        assert!(s.velocity("r", "ann", at(20 * HOUR, "c", LONDON), limits()).is_empty());
        // New York between two London sign-ins, an hour after the first.
        let legs = s.velocity("r", "ann", at(HOUR, "b", NEW_YORK), limits());
        let pairs: Vec<(&str, &str)> = legs.iter().map(|l| (l.from.id.as_str(), l.to.id.as_str())).collect();
        assert_eq!(pairs, [("a", "b")], "19 h back to London is possible");
        assert!(
            s.velocity("r", "ann", at(HOUR, "b", NEW_YORK), limits()).is_empty(),
            "a repeat"
        );
    }

    #[test]
    fn newest_first_into_a_full_track_judges_each_event_against_the_next_and_keeps_the_track() {
        let points = |s: &State| match s.rules.get("r") {
            Some(RuleState::Velocity { groups }) => groups["ann"].points.clone(),
            _ => Vec::new(),
        };
        let mut s = State::default();
        // Newest first, alternating places two hours apart (nothing impossible), until full.
        let place = |i: i64| if i % 2 == 0 { LONDON } else { PARIS };
        for i in (100 - MAX_POINTS as i64..100).rev() {
            assert!(
                s.velocity("r", "ann", at(i * 2 * HOUR, &format!("e{i}"), place(i)), limits())
                    .is_empty()
            );
        }
        let full = points(&s);
        assert_eq!(full.len(), MAX_POINTS);
        let oldest = full[0].t;
        // New York an hour before the oldest (in London or Paris): impossible.
        let legs = s.velocity("r", "ann", at(oldest - HOUR, "ny", NEW_YORK), limits());
        let pairs: Vec<(&str, &str)> = legs.iter().map(|l| (l.from.id.as_str(), l.to.id.as_str())).collect();
        assert_eq!(pairs, [("ny", full[0].id.as_str())]);
        assert_eq!(points(&s), full, "the cap keeps the newest");
        // The same place as the oldest, earlier still: nothing, and nothing kept.
        assert!(
            s.velocity(
                "r",
                "ann",
                at(oldest - 3 * HOUR, "same", place(100 - MAX_POINTS as i64)),
                limits()
            )
            .is_empty()
        );
        assert_eq!(points(&s), full);
    }
}
