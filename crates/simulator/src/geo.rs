//! Static look-alike network data: addresses with geolocation and browser fingerprints.

use serde_json::{Value, json};

/// An address and where it geolocates (all strings, like the live `ip_address_details`).
#[derive(Debug)]
pub(crate) struct Location {
    pub ip: &'static str,
    pub country: &'static str,
    pub city: &'static str,
    pub region: &'static str,
    pub region_code: &'static str,
    pub asn: &'static str,
    pub latitude: &'static str,
    pub longitude: &'static str,
}

impl Location {
    pub(crate) fn details(&self) -> Value {
        json!({"country": self.country, "city": self.city, "region": self.region,
               "region_code": self.region_code, "asn": self.asn,
               "latitude": self.latitude, "longitude": self.longitude})
    }
}

macro_rules! loc {
    ($ip:expr, $c:expr, $city:expr, $r:expr, $rc:expr, $asn:expr, $lat:expr, $lon:expr) => {
        Location {
            ip: $ip,
            country: $c,
            city: $city,
            region: $r,
            region_code: $rc,
            asn: $asn,
            latitude: $lat,
            longitude: $lon,
        }
    };
}

/// Homes are the first [`HOME_LOCATIONS`]; the rest are "foreign" sources for failed logins
/// and the new-country login.
pub(crate) const HOME_LOCATIONS: usize = 4;

/// Documentation-range and GeoIP-test addresses only.
pub(crate) static LOCATIONS: &[Location] = &[
    loc!(
        "89.160.20.128",
        "SE",
        "Linkoping",
        "Ostergotland",
        "E",
        "29518",
        "58.41086",
        "15.62157"
    ),
    loc!(
        "81.2.69.142",
        "GB",
        "London",
        "England",
        "ENG",
        "20712",
        "51.50853",
        "-0.12574"
    ),
    loc!(
        "216.160.83.56",
        "US",
        "Milton",
        "Washington",
        "WA",
        "209",
        "47.2513",
        "-122.3149"
    ),
    loc!("2.125.160.216", "GB", "Boxford", "England", "ENG", "", "51.75", "-1.25"),
    loc!(
        "175.16.199.4",
        "CN",
        "Changchun",
        "Jilin",
        "JL",
        "",
        "43.88",
        "125.3228"
    ),
    loc!("217.65.48.2", "GI", "Gibraltar", "", "", "", "36.14474", "-5.35257"),
    loc!(
        "202.196.224.5",
        "PH",
        "Manila",
        "Metro Manila",
        "00",
        "",
        "14.6042",
        "120.9822"
    ),
    loc!("111.235.160.9", "KR", "Seoul", "Seoul", "11", "", "37.5985", "126.9783"),
    loc!("67.43.156.1", "BT", "Thimphu", "", "", "35908", "27.5", "90.5"),
];

/// (user agent, ja3, ja4) triples; the last one is a script, as brute-force attempts are.
pub(crate) static USER_AGENTS: &[(&str, &str, &str)] = &[
    (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/144.0.0.0 Safari/537.36",
        "353a03072e841d5004dfaa78561ccc70",
        "t13d691100_8b2139ff7677_f0e8fcc46740",
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.2 Safari/605.1.15",
        "f90ffded875933863a95a1a84285c922",
        "q13d0311h3_55b375c5d22e_653d80c3fe9d",
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/144.0.0.0 Safari/537.36",
        "0b85eb0d4981e69064e40753e4f0ac5f",
        "t13d301100_1d37bd780c83_8e6e362c5eac",
    ),
    ("python-requests/2.32.3", "", ""),
];

/// Index of the scripted user agent.
pub(crate) const SCRIPT_AGENT: usize = 3;
