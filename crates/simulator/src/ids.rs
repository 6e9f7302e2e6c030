//! Random ids and keys drawn from a seeded generator, so a seed always yields the same ones.
//! A leaf: everything that mints an id uses these, and they use nothing of the simulator.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// `len` random characters from `[A-Za-z0-9]`.
pub(crate) fn alnum(rng: &mut ChaCha8Rng, len: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..len)
        .map(|_| char::from(CHARS[rng.random_range(0..CHARS.len())]))
        .collect()
}

/// A random (version 4 shaped) UUID string.
pub(crate) fn uuid(rng: &mut ChaCha8Rng) -> String {
    let b: [u8; 16] = rng.random();
    let h = hex::encode(b);
    format!(
        "{}-{}-4{}-{:x}{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        8 + (b[8] & 3),
        &h[17..20],
        &h[20..32]
    )
}
