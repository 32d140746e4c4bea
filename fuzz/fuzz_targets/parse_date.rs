//! HTTP-date parsing never panics, and a date it accepts survives a round trip
//! through the IMF-fixdate form a server sends.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tower_range_serve::fuzzing::parse_date;

fuzz_target!(|value: &[u8]| {
    if let Some(date) = parse_date(value) {
        let fixdate = httpdate::fmt_http_date(date);
        assert_eq!(parse_date(fixdate.as_bytes()), Some(date), "{fixdate}");
    }
});
