//! Hypercalls: the guest kernel's only way to do anything privileged.
//!
//! The kernel runs in ring 3; its TSS I/O bitmap opens the hypercall ports,
//! so `out dx, eax` exits straight to the host with the block's address in
//! eax. The host writes `ret`/`errno` into the block before we resume.
//!
//! Every wrapper builds its block with [`Call::encode`], the same table the
//! host's `Call::decode` reads, so arguments are named, not placed by hand.
//! [`call`] and [`call_nr`] send raw slots: the hypercall suite, the fuzzer
//! and the benchmarks use them to send numbers and blocks no wrapper would.

use core::arch::asm;
use vkernel_abi::{Call, Errno, Hypercall, HypercallBlock};

/// Issues `c`; `Ok(ret)` or the host's errno.
#[inline]
pub fn invoke(c: Call) -> Result<i64, Errno> {
    send(c.hypercall() as u16, c.encode())
}

/// Issues hypercall `hc` with raw `args` (tests and benchmarks).
#[inline]
pub fn call(hc: Hypercall, args: [u64; 7]) -> Result<i64, Errno> {
    call_nr(hc as u16, args)
}

/// Issues hypercall number `nr` (which the host may not know) with raw
/// `args`.
#[inline]
pub fn call_nr(nr: u16, args: [u64; 7]) -> Result<i64, Errno> {
    send(
        nr,
        HypercallBlock {
            args,
            ret: 0,
            errno: 0,
        },
    )
}

/// Sends `block` as hypercall `nr` and decodes the host's answer.
#[inline]
fn send(nr: u16, block: HypercallBlock) -> Result<i64, Errno> {
    // Posted calls go first, so everything reaches the host in order. A
    // clock reading is ordered with nothing they do: without a usable
    // TSC (QEMU's CPU models) every clock read is this hypercall, and a
    // fork's (the child's start time) sent its posted clone on its own,
    // an exit more per fork.
    if nr != Hypercall::Batch as u16
        && nr != Hypercall::VmspaceCtlBatch as u16
        && nr != Hypercall::Clock as u16
        && crate::batch::pending()
    {
        crate::batch::flush();
    }
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
#[inline]
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
    console_write(stream, bytes).unwrap_or(0)
}

/// Writes bytes to the host's stdout (`stream` 1) or stderr (2): how many
/// were written, or the host's error (`EPIPE` when its reader is gone).
pub fn console_write(stream: u64, bytes: &[u8]) -> Result<usize, Errno> {
    invoke(Call::ConsoleWrite {
        buf: bytes.as_ptr() as u64,
        len: bytes.len() as u64,
        stream,
    })
    .map(|n| n as usize)
}

/// Reads console input into `buf`: the count, 0 at end of input, or
/// EAGAIN when none is ready.
pub fn console_read(buf: &mut [u8]) -> Result<usize, Errno> {
    invoke(Call::ConsoleRead {
        buf: buf.as_mut_ptr() as u64,
        len: buf.len() as u64,
    })
    .map(|n| n as usize)
}

/// Blocks until the host clock reaches `deadline_ns` (0: no deadline),
/// console input is ready or the host terminal's size changed. Returns
/// the `vkernel_abi::IDLE_INPUT` | `IDLE_WINCH` bits (0: the deadline);
/// a deadline already past polls.
pub fn idle(deadline_ns: u64) -> i64 {
    invoke(Call::Idle { deadline_ns }).unwrap_or(0)
}

/// The host terminal's size (rows, cols, xpixel, ypixel) into `ws`;
/// ENOTTY when the host's stdin is not a terminal.
pub fn console_winsize(ws: &mut [u16; 4]) -> Result<u64, Errno> {
    invoke(Call::ConsoleWinsize {
        buf: ws.as_mut_ptr() as u64,
    })
    .map(|n| n as u64)
}

/// Wall-clock nanoseconds since the Unix epoch: the clock page's
/// monotonic time plus its realtime offset, or the `clock` hypercall.
pub fn realtime_ns() -> u64 {
    if let Some((mono, page)) = page_clock() {
        return mono.saturating_add(page.realtime_offset_ns);
    }
    invoke(Call::Clock {
        which: vkernel_abi::CLOCK_REALTIME,
    })
    .unwrap_or(0) as u64
}

/// Ends the run with `status`. Posted calls are dropped, not sent: they
/// are vmspace calls, and the host ends every vmspace with the run (a
/// trivial /init's last `vmspace_destroy` was an exit of its own).
pub fn exit(status: i32) -> ! {
    crate::batch::discard();
    let _ = invoke(Call::Exit {
        status: status as u64,
    });
    // The host never resumes us after exit; spin if it somehow did.
    loop {
        core::hint::spin_loop();
    }
}

/// Monotonic host time in nanoseconds: from the TSC through the clock page
/// the host keeps (no exit), or the `clock` hypercall when the page says
/// the TSC is not to be used.
#[inline]
pub fn clock_ns() -> u64 {
    if let Some((mono, _)) = page_clock() {
        return mono;
    }
    invoke(Call::Clock {
        which: vkernel_abi::CLOCK_MONOTONIC,
    })
    .unwrap_or(0) as u64
}

/// Monotonic ns if the clock page can give it (no exit), else `None`:
/// for readings worth taking only when they are cheap (CPU-time
/// accounting around every time slice).
pub fn cheap_clock_ns() -> Option<u64> {
    page_clock().map(|(mono, _)| mono)
}

/// The latest monotonic reading, so readings never go back even if the
/// host's refresh of the page moved the line under a reader.
static LAST_NS: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// Monotonic ns from the clock page and the page, if the page may be used.
fn page_clock() -> Option<(u64, vkernel_abi::clock::ClockPage)> {
    use core::sync::atomic::Ordering::Relaxed;
    use vkernel_abi::clock::ClockPage;
    let at = vkernel_abi::layout::CLOCK_PAGE_ADDR as *const ClockPage;
    // SAFETY: the clock page is guest RAM the kernel maps at its physical
    // address; only the host writes it, while the vCPU is stopped.
    let page = unsafe { core::ptr::read_volatile(at) };
    if !page.stable() || !page.version.is_multiple_of(2) {
        return None;
    }
    // SAFETY: RDTSC only reads the time-stamp counter (CR4.TSD is clear).
    let tsc = unsafe { core::arch::x86_64::_rdtsc() };
    let now = page.ns_at(tsc).max(LAST_NS.load(Relaxed));
    LAST_NS.store(now, Relaxed);
    Some((now, page))
}
