//! A compliance file as large as a benchmark wants (a GB), made line by line on request
//! instead of held: line `i` comes from a random source seeded with the file's seed and `i`,
//! so the same text is made when the file is hashed and each time it is served.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::logfiles::LineSource;
use super::org::Person;
use super::records;

/// `count` records of `event_type` by `people`, `step_us` apart from `start_us`.
#[derive(Debug)]
pub(crate) struct GeneratedLines {
    pub(crate) seed: u64,
    pub(crate) workspace_id: String,
    pub(crate) people: Vec<Person>,
    pub(crate) event_type: String,
    pub(crate) start_us: i64,
    pub(crate) step_us: i64,
    pub(crate) count: usize,
}

impl GeneratedLines {
    /// When the last record happened.
    pub(crate) fn last_us(&self) -> i64 {
        self.start_us + self.step_us * i64::try_from(self.count.saturating_sub(1)).unwrap_or(0)
    }
}

impl LineSource for GeneratedLines {
    fn count(&self) -> usize {
        self.count
    }

    fn line(&self, i: usize) -> String {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let at_us = self.start_us + self.step_us * i64::try_from(i).unwrap_or(0);
        let person = &self.people[rng.random_range(0..self.people.len())];
        records::build_with(&mut rng, &self.workspace_id, &self.event_type, person, at_us)
            .map(|v| v.to_string())
            .unwrap_or_default()
    }
}
