//! Host-side fuzzing of the ABI's parsers (#19): the hypercall block
//! decoder (`Call::decode`, what the host runs on every block a guest
//! sends) and the cpio reader (`cpio::Archive`, what the host checks an
//! image with before booting). Arbitrary and mutated inputs: never a
//! panic, and what is accepted is self-consistent.
//!
//! `VKERNEL_FUZZ_CASES` sets the cases per property (default 2,000: well
//! under a second each); a long run: `VKERNEL_FUZZ_CASES=2000000 cargo
//! test --release -p vkernel-abi --test fuzz_parsers`.

use proptest::prelude::*;
use vkernel_abi::cpio::{self, Archive, CpioError, HEADER_LEN};
use vkernel_abi::{Call, HypercallBlock, UnknownHypercall};

fn cases() -> u32 {
    std::env::var("VKERNEL_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Argument values as a hostile guest picks them: edges more than chance.
fn arg() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(u64::MAX),
        Just(1u64 << 63),
        0u64..0x1_0000,
        any::<u64>(),
    ]
}

/// A newc member header (the layout `cpio -o -H newc` writes).
fn newc_header(out: &mut Vec<u8>, name: &str, mode: u32, size: usize) {
    let fields = [
        1u32,
        mode,
        0,
        0,
        1,
        0,
        size as u32,
        0,
        0,
        0,
        0,
        name.len() as u32 + 1,
        0,
    ];
    out.extend_from_slice(cpio::MAGIC);
    for f in fields {
        out.extend_from_slice(format!("{f:08x}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

/// A well-formed archive of `members`.
fn pack(members: &[(String, u32, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, mode, data) in members {
        newc_header(&mut out, name, *mode, data.len());
        out.extend_from_slice(data);
        while !out.len().is_multiple_of(4) {
            out.push(0);
        }
    }
    newc_header(&mut out, cpio::TRAILER, 0, 0);
    out
}

fn member() -> impl Strategy<Value = (String, u32, Vec<u8>)> {
    (
        "[a-z]{1,8}(/[a-z]{1,8}){0,2}",
        prop_oneof![
            Just(0o100644u32),
            Just(0o040755),
            Just(0o120777),
            any::<u32>()
        ],
        proptest::collection::vec(any::<u8>(), 0..64),
    )
}

/// Checks what the reader makes of `buf`: every entry lies inside `buf`,
/// the iterator ends (at most one entry per header's worth of bytes,
/// stopping after an error), `validate` agrees with it, and `find`
/// returns an entry the iterator also yields.
fn check_archive(buf: &[u8]) {
    let mut n = 0usize;
    let mut failed: Option<CpioError> = None;
    let range = buf.as_ptr_range();
    for e in Archive::new(buf) {
        assert!(failed.is_none(), "an entry after an error");
        match e {
            Ok(e) => {
                n += 1;
                assert!(n <= buf.len() / HEADER_LEN, "more entries than headers fit");
                let d = e.data.as_ptr_range();
                assert!(e.data.is_empty() || (range.start <= d.start && d.end <= range.end));
                let nm = e.name.as_bytes().as_ptr_range();
                assert!(e.name.is_empty() || (range.start <= nm.start && nm.end <= range.end));
            }
            Err(err) => {
                // An offset an error names is inside the buffer (or its end).
                match err {
                    CpioError::Truncated(o)
                    | CpioError::BadMagic(o)
                    | CpioError::BadHeader(o)
                    | CpioError::BadName(o) => assert!(o <= buf.len()),
                    CpioError::NoTrailer => {}
                }
                failed = Some(err);
            }
        }
    }
    match Archive::validate(buf) {
        Ok(count) => {
            assert!(failed.is_none());
            assert_eq!(count, n);
        }
        Err(e) => assert_eq!(Some(e), failed),
    }
    if let Some(first) = Archive::new(buf)
        .filter_map(Result::ok)
        .find(|e| e.is_file())
    {
        let found = Archive::find(buf, first.name).expect("find the first file");
        assert_eq!(found.name, first.name);
        assert!(found.is_file());
    }
}

proptest! {
    #![proptest_config(config())]

    /// Any number and block: decode answers, never panics; a call it
    /// accepts names that number and re-encodes to the same arguments
    /// (the slots it does not use are the only ones that may differ, and
    /// decoding the re-encoded block gives the same call).
    #[test]
    fn hypercall_decoder_takes_any_block(
        nr in prop_oneof![0u16..64, any::<u16>()],
        args in proptest::array::uniform7(arg()),
        ret in any::<i64>(),
        errno in any::<i64>(),
    ) {
        let block = HypercallBlock { args, ret, errno };
        match Call::decode(nr, &block) {
            Ok(call) => {
                prop_assert_eq!(call.hypercall() as u16, nr);
                let again = call.encode();
                for (i, (&a, &b)) in again.args.iter().zip(block.args.iter()).enumerate() {
                    prop_assert!(a == b || a == 0, "slot {} changed: {:#x} -> {:#x}", i, b, a);
                }
                prop_assert_eq!(Call::decode(nr, &again), Ok(call));
            }
            Err(UnknownHypercall(n)) => prop_assert_eq!(n, nr),
        }
    }

    /// Arbitrary bytes, often with a newc magic in front.
    #[test]
    fn cpio_reader_takes_any_bytes(
        magic in any::<bool>(),
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        let mut buf = Vec::new();
        if magic {
            buf.extend_from_slice(cpio::MAGIC);
        }
        buf.extend_from_slice(&bytes);
        check_archive(&buf);
    }

    /// Well-formed archives, then mutated: bytes overwritten (often with
    /// hex digits, so header fields parse to other sizes), the archive
    /// cut short. The unmutated archive must read back exactly.
    #[test]
    fn cpio_reader_takes_mutated_archives(
        members in proptest::collection::vec(member(), 0..5),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), prop_oneof![
            any::<u8>(),
            prop::sample::select(b"0123456789abcdefABCDEFffffffff".to_vec()),
        ]), 0..6),
        cut in any::<prop::sample::Index>(),
        do_cut in any::<bool>(),
    ) {
        let good = pack(&members);
        let read: Vec<_> = Archive::new(&good).collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(read.len(), members.len());
        for (e, (name, mode, data)) in read.iter().zip(&members) {
            prop_assert_eq!(e.name, name.as_str());
            prop_assert_eq!(e.mode, *mode);
            prop_assert_eq!(e.data, data.as_slice());
        }
        let mut bad = good.clone();
        for (at, v) in edits {
            let i = at.index(bad.len());
            bad[i] = v;
        }
        if do_cut {
            bad.truncate(cut.index(bad.len() + 1));
        }
        check_archive(&bad);
    }
}
