//! Hypercalls: the guest kernel's only way to do anything privileged.
//!
//! The kernel runs in ring 3; its TSS I/O bitmap opens the hypercall ports,
//! so `out dx, eax` exits straight to the host with the block's address in
//! eax. The host writes `ret`/`errno` into the block before we resume.

use core::arch::asm;
use vkernel_abi::{Errno, Hypercall, HypercallBlock};

/// Issues hypercall `hc` with `args`; `Ok(ret)` or the host's errno.
pub fn call(hc: Hypercall, args: [u64; 7]) -> Result<i64, Errno> {
    call_nr(hc as u16, args)
}

/// Issues hypercall number `nr` (which the host may not know).
pub fn call_nr(nr: u16, args: [u64; 7]) -> Result<i64, Errno> {
    let block = HypercallBlock {
        args,
        ret: 0,
        errno: 0,
    };
    let done = raw(
        vkernel_abi::HC_PORT_BASE + nr,
        &block as *const HypercallBlock as u64,
    );
    if done.errno != 0 {
        Err(Errno(done.errno as i32))
    } else {
        Ok(done.ret)
    }
}

/// Sends `block_addr` to `port` and reads the block back. `block_addr` is a
/// guest-physical address (the kernel is identity-mapped below 4 GiB).
fn raw(port: u16, block_addr: u64) -> HypercallBlock {
    // SAFETY: `out` to a hypercall port only exits to the host, which reads
    // and writes the block at block_addr; the asm clobbers memory (no
    // `nomem`), so the compiler re-reads the block afterwards.
    unsafe {
        asm!("out dx, eax", in("dx") port, in("eax") block_addr as u32, options(nostack, preserves_flags));
        core::ptr::read_volatile(block_addr as *const HypercallBlock)
    }
}

/// Sends an arbitrary (possibly bad) block address: the `hcfault=` tests
/// use it to show the host stops a guest that breaks the protocol.
pub fn raw_port_out(port: u16, value: u32) {
    // SAFETY: as above; the host decides what happens to a bad block.
    unsafe { asm!("out dx, eax", in("dx") port, in("eax") value, options(nostack)) }
}

/// Writes bytes to the host's stdout (`stream` 1) or stderr (2); returns
/// how many were written.
pub fn console_write_to(stream: u64, bytes: &[u8]) -> usize {
    call(
        Hypercall::ConsoleWrite,
        [
            bytes.as_ptr() as u64,
            bytes.len() as u64,
            stream,
            0,
            0,
            0,
            0,
        ],
    )
    .map_or(0, |n| n as usize)
}

/// Reads console input into `buf`: the count, 0 at end of input, or
/// EAGAIN when none is ready.
pub fn console_read(buf: &mut [u8]) -> Result<usize, Errno> {
    call(
        Hypercall::ConsoleRead,
        [buf.as_mut_ptr() as u64, buf.len() as u64, 0, 0, 0, 0, 0],
    )
    .map(|n| n as usize)
}

/// Blocks until the host clock reaches `deadline_ns` (0: no deadline) or
/// console input is ready. True if input is ready.
pub fn idle(deadline_ns: u64) -> bool {
    call(Hypercall::Idle, [deadline_ns, 0, 0, 0, 0, 0, 0]) == Ok(1)
}

/// Wall-clock nanoseconds since the Unix epoch.
pub fn realtime_ns() -> u64 {
    call(
        Hypercall::Clock,
        [vkernel_abi::CLOCK_REALTIME, 0, 0, 0, 0, 0, 0],
    )
    .unwrap_or(0) as u64
}

/// Ends the run with `status`.
pub fn exit(status: i32) -> ! {
    let _ = call(Hypercall::Exit, [status as u64, 0, 0, 0, 0, 0, 0]);
    // The host never resumes us after exit; spin if it somehow did.
    loop {
        core::hint::spin_loop();
    }
}

/// Monotonic host time in nanoseconds.
pub fn clock_ns() -> u64 {
    call(Hypercall::Clock, [0; 7]).unwrap_or(0) as u64
}
