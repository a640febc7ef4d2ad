//! The hypercall fuzzer (`--append test=fuzz[:N]`): N (default 100,000)
//! vmspace hypercalls with random numbers and random argument blocks,
//! garbage addresses included. The host must answer every one with a
//! result or an errno, never panic or hang, and give back every pool page
//! once the vmspaces are destroyed.
//!
//! Pointers into the kernel's own memory are confined to a scratch area,
//! so the fuzzer cannot overwrite itself; everything else is fair game.

use guestlib::hypercall::{call, call_nr};
use guestlib::println;
use guestlib::vmspace as vms;
use vkernel_abi::layout::{PAGE_SIZE, VM_MAX_USER_ADDRESS, VM_MIN_USER_ADDRESS};
use vkernel_abi::mman::{
    FD_NONE, MAP_ANON, MAP_FIXED, MAP_PRIVATE, MAP_SHARED, PHYSMEM_FD, PROT_MASK,
};
use vkernel_abi::{Hypercall, KernelIovec, TrapFrame, VextFrame};

/// Where host writes aimed at kernel memory may land.
const SCRATCH_PAGES: u64 = 16;
#[repr(C, align(4096))]
struct Scratch([u8; SCRATCH_PAGES as usize * 4096]);
static mut SCRATCH: Scratch = Scratch([0; SCRATCH_PAGES as usize * 4096]);

/// The iovec arrays of preadv/pwritev (the host only reads them; their
/// buffers are [`kernel_ptr`]s).
const IOVS: usize = 16;
static mut IOV: [KernelIovec; IOVS] = [KernelIovec { base: 0, len: 0 }; IOVS];

/// xorshift64*: small, fast, deterministic for a seed.
struct Rng(u64);

impl Rng {
    /// A generator for `seed`: every seed its own sequence. (xorshift's
    /// state must not be 0; `seed | 1` made seeds 2k and 2k+1 the same.)
    /// SplitMix64's finalizer is a bijection, so distinct seeds give
    /// distinct states; the one seed it maps to 0 gets a fixed state.
    fn seeded(seed: u64) -> Rng {
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        Rng(if z == 0 { 0x5eed } else { z })
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Ids the fuzzer uses most (so calls often find a vmspace).
const IDS: u64 = 8;

fn scratch_addr() -> u64 {
    core::ptr::addr_of!(SCRATCH) as u64
}

/// A value for an argument: mostly plausible, often hostile.
fn value(r: &mut Rng, mem_bytes: u64) -> u64 {
    match r.below(12) {
        0 => 0,
        1 => u64::MAX - r.below(4096),
        2 => r.next(),
        3 => VM_MAX_USER_ADDRESS - PAGE_SIZE * r.below(4) + r.below(3) * 0x800,
        4 => VM_MIN_USER_ADDRESS * r.below(3),
        5 => mem_bytes - r.below(256),
        6 => 1 << r.below(64),
        7 => r.below(16) * PAGE_SIZE,
        _ => 0x40_0000 + r.below(64) * PAGE_SIZE + r.below(2) * r.below(4096),
    }
}

/// A pointer the host may write through: the scratch area (with room for
/// the largest transfer, 8 KiB), or outside RAM.
fn kernel_ptr(r: &mut Rng, mem_bytes: u64) -> u64 {
    match r.below(4) {
        0 => mem_bytes + r.below(1 << 20),
        1 => r.next() | (1 << 40),
        _ => scratch_addr() + r.below((SCRATCH_PAGES - 2) * PAGE_SIZE),
    }
}

/// Runs `count` random hypercalls; returns true if the pool came back.
pub fn run(count: u64, mem_bytes: u64, seed: u64) -> bool {
    let mut r = Rng::seeded(seed);
    let pool_at_start = vms::pool_pages();
    let (mut ok, mut err) = (0u64, 0u64);
    // Ids outside 1..=IDS that a create or clone made.
    let mut made = [0u64; 1024];
    let mut made_len = 0;
    for _ in 0..count {
        let id = if r.below(8) == 0 {
            value(&mut r, mem_bytes)
        } else {
            1 + r.below(IDS)
        };
        let mut a = [0u64; 7];
        for v in a.iter_mut() {
            *v = value(&mut r, mem_bytes);
        }
        a[0] = id;
        let mut new_id = None;
        let result = match r.below(12) {
            0 => {
                new_id = Some(id);
                vms::create(id, r.below(2) * a[1], r.below(2) * a[2])
            }
            1 => vms::destroy(id),
            2 => {
                // Random frames, but always with a timeout: a frame that
                // happens to be valid must not spin forever.
                let tf_ptr = kernel_ptr(&mut r, mem_bytes);
                let vf_ptr = kernel_ptr(&mut r, mem_bytes);
                if r.below(2) == 0 && tf_ptr < mem_bytes && vf_ptr < mem_bytes {
                    let mut tf = TrapFrame {
                        rip: a[1],
                        rsp: a[2],
                        cs: 0x23,
                        ss: 0x1b,
                        rflags: 0x202 | (r.below(2) << 8),
                        ..Default::default()
                    };
                    let mut vf = VextFrame::default();
                    vms::run(id, &mut tf, &mut vf, 1 + r.below(2000))
                } else {
                    vms::ctl_raw(id, r.below(3), tf_ptr, vf_ptr, 1 + r.below(2000))
                }
            }
            3 => {
                let flags = match r.below(4) {
                    0 => a[4],
                    1 => MAP_ANON | MAP_PRIVATE | MAP_FIXED,
                    2 => MAP_ANON | MAP_PRIVATE,
                    _ => MAP_SHARED | MAP_FIXED,
                };
                let fd = match r.below(3) {
                    0 => FD_NONE,
                    1 => PHYSMEM_FD,
                    _ => a[5],
                };
                let first = r.below(8);
                let off = if fd == PHYSMEM_FD {
                    scratch_addr() + first * PAGE_SIZE
                } else {
                    a[6]
                };
                let len = if fd == PHYSMEM_FD {
                    // A shared window on the kernel's memory must stay in
                    // the scratch area (or be refused for leaving RAM):
                    // processes and pwrite write through it.
                    if r.below(4) == 0 {
                        mem_bytes
                    } else {
                        r.below(SCRATCH_PAGES - first) * PAGE_SIZE
                    }
                } else if r.below(2) == 0 {
                    r.below(64) * PAGE_SIZE
                } else {
                    a[2]
                };
                vms::mmap(
                    id,
                    a[1],
                    len,
                    a[3] & (PROT_MASK | (r.below(2) * 0x100)),
                    flags,
                    fd,
                    off,
                )
            }
            4 => vms::munmap(id, a[1], a[2]),
            5 => vms::pread_raw(
                id,
                kernel_ptr(&mut r, mem_bytes),
                r.below(8192),
                r.below(2) * a[3],
                a[4],
            ),
            6 => vms::pwrite_raw(
                id,
                kernel_ptr(&mut r, mem_bytes),
                r.below(8192),
                r.below(2) * a[3],
                a[4],
            ),
            7 => vms::mcontrol(id, a[1], a[2], r.below(14), a[4]),
            8 => vms::mprotect(id, a[1], a[2], a[3] & 0xf),
            9 => vms::clone(id, 1 + r.below(IDS)),
            10 => {
                // Buffers in the scratch area (or outside RAM), the array
                // in the kernel's own (or outside RAM); a count that makes
                // the host read past the array is always refused first.
                // SAFETY: single-threaded; no other reference to IOV lives.
                let iov = unsafe { &mut *core::ptr::addr_of_mut!(IOV) };
                for v in iov.iter_mut() {
                    *v = KernelIovec {
                        base: kernel_ptr(&mut r, mem_bytes),
                        len: if r.below(16) == 0 {
                            a[2]
                        } else {
                            r.below(8192)
                        },
                    };
                    // Hostile lengths only with hostile bases or sums.
                    if v.len >= 8192 && v.base < mem_bytes {
                        v.len = r.below(8192);
                    }
                }
                let array = match r.below(8) {
                    0 => mem_bytes + r.below(1 << 20),
                    1 => r.next() | (1 << 40),
                    _ => core::ptr::addr_of!(IOV) as u64,
                };
                let cnt = match r.below(8) {
                    0 => 0,
                    1 => vkernel_abi::VMSPACE_IOV_MAX + 1 + r.below(1 << 20),
                    _ => 1 + r.below(IOVS as u64),
                };
                let flags = r.below(2) * a[3];
                if r.below(2) == 0 {
                    vms::preadv_raw(id, array, cnt, flags, a[4])
                } else {
                    vms::pwritev_raw(id, array, cnt, flags, a[4])
                }
            }
            _ => {
                // Unknown or basic numbers (not exit/idle/console; 40,
                // vmspace_copy, with random ids, addresses and lengths).
                let nr = [0u16, 3, 4, 7, 17, 29, 40, 63][r.below(8) as usize];
                if nr == 17 {
                    new_id = Some(a[1]);
                    call(Hypercall::VmspaceClone, [id, a[1], 0, 0, 0, 0, 0])
                } else {
                    call_nr(nr, a)
                }
            }
        };
        match result {
            Ok(_) => ok += 1,
            Err(_) => err += 1,
        }
        if let (Ok(_), Some(id)) = (result, new_id) {
            if !(1..=IDS).contains(&id) && made_len < made.len() {
                made[made_len] = id;
                made_len += 1;
            }
        }
    }
    // Tear down whatever the fuzzer made: the usual ids, and every other
    // id a create or clone made.
    for id in 1..=IDS {
        let _ = vms::destroy(id);
    }
    for &id in &made[..made_len] {
        let _ = vms::destroy(id);
    }
    let pool_at_end = vms::pool_pages();
    println!(
        "fuzz: {count} hypercalls, {ok} succeeded, {err} refused with an errno; pool pages {pool_at_start} at start, {pool_at_end} at end"
    );
    pool_at_end == pool_at_start
}
