//! 100,000 random hypercalls (garbage addresses included) per seed: the
//! host answers each, never panics or hangs, and every pool page comes back.

mod common;

fn fuzz(seed: u64) {
    let r = common::vkernel(&[
        "run",
        "--test-kernel",
        "--append",
        &format!("test=fuzz:100000 seed={seed}"),
    ]);
    r.expect_code(0).stdout_has("fuzz: 100000 hypercalls");
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    let line = r.stdout.lines().find(|l| l.starts_with("fuzz:")).unwrap();
    let nums: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    // [count, succeeded, refused, pool at start, pool at end]
    assert_eq!(nums.len(), 5, "{line}");
    assert_eq!(nums[1] + nums[2], 100_000, "{line}");
    assert!(
        nums[1] > 1000,
        "too few calls succeeded to exercise anything: {line}"
    );
    assert_eq!(nums[3], nums[4], "pool leaked: {line}");
}

#[test]
fn fuzz_seed_1() {
    fuzz(1);
}

#[test]
fn fuzz_seed_2() {
    fuzz(0xdead_beef);
}
