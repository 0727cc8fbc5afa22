// Records and frames: every field round-trips, and decoding any byte string is total.

use ingest::record::{
    decode_frame, decode_payload, DecodeError, FrameError, Record, FRAME_HEADER_BYTES,
};
use ingest::MAX_PAYLOAD_BYTES;

use crate::util::{rec, rec_sized, Rng};

fn round_trip(r: &Record, lsn: u64) {
    let f = r.to_frame(lsn);
    assert_eq!(f.len(), r.frame_len());
    let d = decode_frame(&f).unwrap();
    assert_eq!((d.lsn, &d.record, d.frame_len), (lsn, r, f.len()));
}

#[test]
fn every_field_round_trips_including_empty_none_and_extremes() {
    let full = Record {
        tenant: "acme-ü".into(),
        source: "stripe".into(),
        delivery_id: Some("evt_123".into()),
        event_id: i64::MAX,
        received_at_ms: i64::MIN,
        content_type: Some("application/json; charset=utf-8".into()),
        body: b"{\"a\":1}".to_vec(),
    };
    round_trip(&full, 1);
    round_trip(&full, u64::MAX);
    let empty = Record {
        tenant: String::new(),
        source: String::new(),
        delivery_id: None,
        event_id: -1,
        received_at_ms: 0,
        content_type: None,
        body: Vec::new(),
    };
    round_trip(&empty, 7);
    let some_empty = Record {
        delivery_id: Some(String::new()),
        content_type: Some(String::new()),
        ..empty
    };
    round_trip(&some_empty, 8);
    for i in 0..30 {
        round_trip(&rec(i), i + 1);
    }
}

#[test]
fn large_bodies_round_trip() {
    round_trip(&rec_sized(3, 1 << 20), 42);
    // The largest body that fits the payload cap exactly.
    let mut r = rec_sized(4, 0);
    let overhead = r.frame_len() - FRAME_HEADER_BYTES;
    r.body = vec![0xAB; MAX_PAYLOAD_BYTES - overhead];
    round_trip(&r, 9);
}

#[test]
fn every_prefix_of_a_frame_is_short() {
    let f = rec(11).to_frame(5);
    for cut in 0..f.len() {
        match decode_frame(&f[..cut]) {
            Err(FrameError::Short { needed, available }) => {
                assert_eq!(available, cut);
                assert!(needed > cut);
            }
            other => panic!("prefix of {cut} bytes decoded as {other:?}"),
        }
    }
}

#[test]
fn every_single_bit_flip_is_detected() {
    let f = rec(12).to_frame(6);
    for bit in 0..f.len() * 8 {
        let mut g = f.clone();
        g[bit / 8] ^= 1 << (bit % 8);
        assert!(
            decode_frame(&g).is_err(),
            "flip of bit {bit} went unnoticed"
        );
    }
}

#[test]
fn an_oversized_declared_length_is_refused_before_reading() {
    let mut f = rec(1).to_frame(1);
    f[..4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(
        decode_frame(&f),
        Err(FrameError::TooLong(u32::MAX as usize))
    );
}

#[test]
fn malformed_payloads_are_typed_errors() {
    let good = rec(2).to_frame(3);
    let payload = &good[FRAME_HEADER_BYTES..];
    let mut v = payload.to_vec();
    v[0] = 9;
    assert_eq!(decode_payload(&v), Err(DecodeError::Version(9)));
    let mut v = payload.to_vec();
    v.push(0);
    assert_eq!(decode_payload(&v), Err(DecodeError::Trailing(1)));
    assert_eq!(
        decode_payload(&payload[..5]),
        Err(DecodeError::Short("lsn"))
    );
    // Tenant "\xff" is not UTF-8.
    let mut v = vec![1];
    v.extend_from_slice(&1u64.to_le_bytes());
    v.extend_from_slice(&1u32.to_le_bytes());
    v.push(0xFF);
    assert_eq!(decode_payload(&v), Err(DecodeError::NotUtf8("tenant")));
    // A length far past the end is Short, not an allocation.
    let mut v = vec![1];
    v.extend_from_slice(&1u64.to_le_bytes());
    v.extend_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(decode_payload(&v), Err(DecodeError::Short("tenant")));
}

#[test]
fn random_bytes_and_random_checksummed_payloads_never_panic() {
    let mut rng = Rng(0x5EED);
    for _ in 0..20_000 {
        let len = rng.below(96) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let _ = decode_frame(&bytes);
        let _ = decode_payload(&bytes);
        // Mutations of a valid payload (decoded directly, so the checksum is not in the way).
        let mut p = rec(rng.below(50)).to_frame(1)[FRAME_HEADER_BYTES..].to_vec();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(p.len() as u64) as usize;
            p[at] = rng.next() as u8;
        }
        let cut = rng.below(p.len() as u64 + 1) as usize;
        let _ = decode_payload(&p[..cut]);
    }
}
