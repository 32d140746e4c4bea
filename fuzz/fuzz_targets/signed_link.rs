//! The signed-link check never panics on any path and query; a link minted for
//! one path verifies for another only if both resolve to the same canonical
//! path; and no one-byte change of a genuine query verifies.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, UNIX_EPOCH};

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use tower_range_serve::fuzzing::{fuzz_key, signed_link};
use tower_range_serve::signed::Claims;

const NOW: u64 = 1_800_000_000;

#[derive(Debug, Arbitrary)]
struct Input {
    /// A whole request target, path and query.
    uri: String,
    now: u32,
    peer: Option<[u8; 4]>,
    /// A path to mint a link for, and one to request it with.
    signed: String,
    requested: String,
    /// Where to change the genuine query, and to what.
    at: usize,
    byte: u8,
}

fuzz_target!(|input: Input| {
    let peer = input.peer.map(|p| IpAddr::V4(Ipv4Addr::from(p)));
    let _ = signed_link(&input.uri, u64::from(input.now), peer);

    let claims = Claims::expiring_at(UNIX_EPOCH + Duration::from_secs(NOW + 60)).client("u");
    let Ok(link) = fuzz_key().sign(&format!("/{}", input.signed), &claims) else {
        return;
    };
    let genuine = format!("{}?{}", link.path(), link.query());
    assert_eq!(signed_link(&genuine, NOW, peer), Ok(()), "{genuine}");

    let requested = format!("/{}?{}", input.requested.replace('?', "%3F"), link.query());
    if signed_link(&requested, NOW, peer).is_ok() {
        let path = requested.split_once('?').unwrap().0;
        let resigned = fuzz_key().sign(path, &claims).expect("a verified path resolves");
        assert_eq!(resigned.path(), link.path(), "{requested} borrowed {genuine}");
    }

    let mut query = link.query().as_bytes().to_vec();
    let at = input.at % query.len();
    if query[at] != input.byte && input.byte.is_ascii_graphic() && input.byte != b'%' {
        query[at] = input.byte;
        let changed = format!("{}?{}", link.path(), String::from_utf8(query).unwrap());
        assert_eq!(signed_link(&changed, NOW, peer), Err(403), "{changed}");
    }
});
