//! The envelope decoder against hostile input: arbitrary, truncated and oversized bytes must come
//! back as errors, never as a panic, and a valid envelope must survive any round trip.

use campaignd::protocol::{
    Address, CodecError, Envelope, Kind, Origin, Payload, decode_envelope, encode_envelope,
};
use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Note {
    text: String,
    weights: Vec<f64>,
}

impl Payload for Note {
    const ACTION: &'static str = "note";
}

const LIMIT: usize = 64 * 1024;

fn envelope(text: String, weights: Vec<f64>, secs: i64) -> Envelope<Note> {
    let at = Utc.timestamp_opt(secs, 0).single().unwrap_or_default();
    Envelope::new(
        Kind::Event,
        Origin::agent("content"),
        Address::Topic("notes".into()),
        at,
        Note { text, weights },
    )
    .with_tenant("acme/kr_retail")
    .with_campaign("kr_students_signups")
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        if let Ok(wire) = decode_envelope(&bytes, LIMIT) {
            // Whatever decodes must also open (or refuse to open) without panicking.
            let _ = wire.open::<Note>();
        }
    }

    #[test]
    fn round_trip_and_every_truncation(text in ".{0,64}", weights in proptest::collection::vec(-1e9f64..1e9, 0..8), secs in 0i64..4_000_000_000) {
        let env = envelope(text, weights, secs);
        let bytes = encode_envelope(&env, LIMIT).expect("encodes");
        let back = decode_envelope(&bytes, LIMIT).expect("decodes").open::<Note>().expect("opens");
        prop_assert_eq!(&back, &env);
        for cut in 0..bytes.len() {
            prop_assert!(decode_envelope(&bytes[..cut], LIMIT).is_err());
        }
    }

    #[test]
    fn flipped_bytes_never_panic(text in ".{0,32}", at in 0usize..512, value in any::<u8>()) {
        let mut bytes = encode_envelope(&envelope(text, vec![1.0], 0), LIMIT).expect("encodes");
        let at = at % bytes.len();
        bytes[at] = value;
        if let Ok(wire) = decode_envelope(&bytes, LIMIT) {
            let _ = wire.open::<Note>();
        }
    }
}

#[test]
fn oversized_input_is_refused_before_parsing() {
    let bytes = vec![0xc1u8; LIMIT + 1];
    assert_eq!(
        decode_envelope(&bytes, LIMIT),
        Err(CodecError::TooLarge {
            size: LIMIT + 1,
            limit: LIMIT
        })
    );
}

#[test]
fn a_huge_declared_length_is_an_error_not_an_allocation() {
    // map32 claiming four billion entries, then nothing.
    let bytes = [0xdf, 0xff, 0xff, 0xff, 0xff];
    assert!(decode_envelope(&bytes, LIMIT).is_err());
    // bin32 claiming four gigabytes.
    let bytes = [0xc6, 0xff, 0xff, 0xff, 0xff, 0x00];
    assert!(decode_envelope(&bytes, LIMIT).is_err());
}
