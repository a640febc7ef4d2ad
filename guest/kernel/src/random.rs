//! The kernel's random numbers (getrandom, AT_RANDOM): splitmix64, seeded
//! from the host clock on first use and stirred with it on every fill.
//! Unpredictable enough for hash seeds and stack canaries; not a CSPRNG.

use core::sync::atomic::{AtomicU64, Ordering};

static STATE: AtomicU64 = AtomicU64::new(0);

fn next() -> u64 {
    // One vCPU and no interrupts in the kernel: load/store cannot race.
    let s = STATE
        .load(Ordering::Relaxed)
        .wrapping_add(0x9e37_79b9_7f4a_7c15);
    STATE.store(s, Ordering::Relaxed);
    let mut z = s;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Fills `buf` with random bytes.
pub fn fill(buf: &mut [u8]) {
    let t = guestlib::hypercall::clock_ns();
    let s = STATE.load(Ordering::Relaxed);
    STATE.store(s ^ t.rotate_left(17), Ordering::Relaxed);
    for chunk in buf.chunks_mut(8) {
        let v = next().to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
}
