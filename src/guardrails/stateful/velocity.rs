//! Velocity rules: where a group's events happened, and whether two consecutive ones are so
//! far apart, so soon, that nobody could have travelled between them.

use serde::{Deserialize, Serialize};

use super::{State, group};

/// Places remembered per group (the oldest go first).
pub const MAX_POINTS: usize = 16;
/// Mean Earth radius (IUGG), km.
const EARTH_RADIUS_KM: f64 = 6371.0088;

/// Where and when one event happened. Coordinates are kept in millionths of a degree (about
/// 11 cm), integers so the saved state compares exactly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Point {
    /// Event time, Unix milliseconds.
    pub t: i64,
    pub id: String,
    pub lat: i32,
    pub lon: i32,
}

impl Point {
    /// A point from degrees.
    pub fn new(t: i64, id: &str, latitude: f64, longitude: f64) -> Self {
        let micro = |deg: f64| (deg * 1e6).round() as i32;
        Self {
            t,
            id: id.to_string(),
            lat: micro(latitude),
            lon: micro(longitude),
        }
    }

    fn degrees(&self) -> (f64, f64) {
        (f64::from(self.lat) / 1e6, f64::from(self.lon) / 1e6)
    }
}

/// Two consecutive events of a group too far apart for the time between them.
#[derive(Debug, Clone, PartialEq)]
pub struct Leg {
    pub from: Point,
    pub to: Point,
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
    pub fn velocity(&mut self, rule: &str, key: &str, point: Point, limits: Limits) -> Vec<Leg> {
        let now = self.processed;
        let groups = self.velocity_groups(rule);
        let track = group(groups, key, |g| g.touched);
        track.touched = now;
        if track.points.iter().any(|p| p.id == point.id) {
            return Vec::new();
        }
        let at = track.points.partition_point(|p| p.t <= point.t);
        track.points.insert(at, point);
        let mut legs = Vec::new();
        let neighbours = [at.checked_sub(1).map(|before| (before, at)), Some((at, at + 1))];
        for (a, b) in neighbours.into_iter().flatten() {
            let (Some(from), Some(to)) = (track.points.get(a), track.points.get(b)) else {
                continue;
            };
            let ms = to.t - from.t;
            if ms > limits.window_ms {
                continue;
            }
            let km = distance_km(from.degrees(), to.degrees());
            let kmh = if ms == 0 {
                f64::INFINITY
            } else {
                km / (ms as f64 / 3_600_000.0)
            };
            if km >= limits.min_km && kmh >= limits.min_kmh {
                legs.push(Leg {
                    from: from.clone(),
                    to: to.clone(),
                    km,
                    kmh,
                });
            }
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
    use super::*;

    const HOUR: i64 = 3_600_000;
    const LONDON: (f64, f64) = (51.5072, -0.1276);
    const NEW_YORK: (f64, f64) = (40.7128, -74.0060);
    const PARIS: (f64, f64) = (48.8566, 2.3522);

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
}
