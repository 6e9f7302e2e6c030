//! An event's timestamps written as `chrono` writes them (RFC 3339 in UTC, `Z`, the fraction
//! in 0, 3, 6 or 9 digits as it needs: `SecondsFormat::AutoSi`), from a stack buffer in one
//! write. `chrono`'s own `Serialize` goes through `fmt::Display` and `collect_str`, about
//! 2,000 instructions per timestamp, twice per event; this is a tenth of that. A year outside
//! 0000–9999 or a leap second goes to `chrono`.

use std::borrow::Cow;

use chrono::{DateTime, Datelike, SecondsFormat, Timelike, Utc};
use serde::Serializer;

/// `#[serde(serialize_with = "…")]` for a `DateTime<Utc>`: the same text as `chrono`'s.
pub fn serialize<S: Serializer>(t: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&text(t, &mut [0; 30]))
}

/// The same text as [`serialize`], quoted, appended to `out` (the event writer, `json.rs`).
pub fn write_quoted(t: &DateTime<Utc>, out: &mut Vec<u8>) {
    out.push(b'"');
    out.extend_from_slice(text(t, &mut [0; 30]).as_bytes());
    out.push(b'"');
}

/// `t`'s text: written in `buf`, or by `chrono` when [`write`] cannot.
fn text<'b>(t: &DateTime<Utc>, buf: &'b mut [u8; 30]) -> Cow<'b, str> {
    match write(t, buf) {
        Some(text) => Cow::Borrowed(text),
        None => Cow::Owned(t.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
    }
}

/// `t` in `buf`; `None` when `chrono` must write it.
fn write<'b>(t: &DateTime<Utc>, buf: &'b mut [u8; 30]) -> Option<&'b str> {
    // In UTC the naive value is the time itself; `DateTime`'s own accessors convert it to
    // local time once per field (seven offset additions a timestamp).
    let naive = t.naive_utc();
    let (date, time) = (naive.date(), naive.time());
    let (year, nanos) = (date.year(), time.nanosecond());
    if !(0..=9999).contains(&year) || nanos >= 1_000_000_000 {
        return None;
    }
    *buf = *b"0000-00-00T00:00:00.000000000Z";
    for (range, value) in [
        (0..4, year.unsigned_abs()),
        (5..7, date.month()),
        (8..10, date.day()),
        (11..13, time.hour()),
        (14..16, time.minute()),
        (17..19, time.second()),
    ] {
        decimal(&mut buf[range], value);
    }
    let fraction = match nanos {
        0 => 0,
        n if n % 1_000_000 == 0 => 3,
        n if n % 1_000 == 0 => 6,
        _ => 9,
    };
    let end = if fraction == 0 {
        19
    } else {
        decimal(&mut buf[20..20 + fraction], nanos / 10u32.pow(9 - fraction as u32));
        20 + fraction
    };
    buf[end] = b'Z';
    std::str::from_utf8(&buf[..=end]).ok()
}

/// `value` in decimal, zero-padded to fill `out`.
fn decimal(out: &mut [u8], mut value: u32) {
    for digit in out.iter_mut().rev() {
        *digit = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ours(t: &DateTime<Utc>) -> String {
        let mut out = Vec::new();
        serialize(t, &mut serde_json::Serializer::new(&mut out)).expect("writes");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn the_examples_of_the_schema_are_written_as_chrono_writes_them() {
        for text in [
            "2026-07-31T21:30:46Z",
            "2026-07-31T21:31:02.120Z",
            "1970-01-01T00:00:00Z",
            "2026-12-03T05:07:07.000001Z",
            "2026-12-03T05:07:07.123456789Z",
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999Z",
        ] {
            let t: DateTime<Utc> = text.parse().expect("a timestamp");
            assert_eq!(ours(&t), format!("\"{text}\""));
            assert_eq!(ours(&t), serde_json::to_string(&t).expect("chrono writes it"));
        }
    }

    #[test]
    fn years_past_four_digits_and_leap_seconds_are_left_to_chrono() {
        let far = DateTime::<Utc>::from_timestamp(400_000_000_000, 0).expect("in range");
        let before = DateTime::<Utc>::from_timestamp(-70_000_000_000, 0).expect("in range");
        let leap = DateTime::<Utc>::from_timestamp(1_483_228_799, 1_500_000_000).expect("a leap second");
        for t in [far, before, leap] {
            assert_eq!(ours(&t), serde_json::to_string(&t).expect("chrono writes it"));
        }
    }

    proptest! {
        #[test]
        fn any_instant_is_written_as_chrono_writes_it(
            secs in -62_135_596_800i64..253_402_300_800,
            nanos in prop_oneof![Just(0u32), (0u32..1000).prop_map(|ms| ms * 1_000_000), (0u32..1_000_000).prop_map(|us| us * 1000), 0u32..1_000_000_000],
        ) {
            let t = DateTime::<Utc>::from_timestamp(secs, nanos).expect("in range");
            prop_assert_eq!(ours(&t), serde_json::to_string(&t).expect("chrono writes it"));
        }
    }
}
