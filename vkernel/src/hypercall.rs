//! Hypercall dispatch: read the argument block the guest kernel named,
//! do the call, write `ret`/`errno` back. A block the host cannot read
//! (outside RAM, across its end, misaligned) breaks the protocol: there is
//! nowhere to put an errno, so the guest is stopped.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use vkernel_abi::{Errno, Hypercall, HypercallBlock, Pod, CLOCK_REALTIME, HYPERCALL_BLOCK_SIZE};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::console;
use crate::idle::Idle;

/// What the run loop does after a hypercall.
#[derive(Debug, PartialEq, Eq)]
pub enum Flow {
    /// Resume the guest kernel.
    Resume,
    /// The guest asked to end the run with this status.
    Exit(i32),
}

/// A hypercall the host refused to carry out: the guest is stopped.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The block is not wholly inside guest RAM.
    #[error("hypercall {name} (port {port:#x}): argument block at {addr:#x} is not inside guest memory [0, {ram:#x}) (it needs {size} bytes)")]
    BlockOutside {
        /// Hypercall name.
        name: String,
        /// Port used.
        port: u16,
        /// Block address.
        addr: u64,
        /// RAM size.
        ram: u64,
        /// Block size.
        size: usize,
    },
    /// The block address is not 8-byte aligned.
    #[error(
        "hypercall {name} (port {port:#x}): argument block at {addr:#x} is not 8-byte aligned"
    )]
    BlockMisaligned {
        /// Hypercall name.
        name: String,
        /// Port used.
        port: u16,
        /// Block address.
        addr: u64,
    },
    /// The `out` was not a 4-byte `out dx, eax`.
    #[error(
        "hypercall port {port:#x} written with a {len}-byte out; hypercalls use `out dx, eax`"
    )]
    BadWidth {
        /// Port used.
        port: u16,
        /// Width of the access.
        len: usize,
    },
}

/// Per-VM hypercall state (not the vmspaces: those are in the registry).
pub struct Hypercalls {
    started: Instant,
    unknown_logged: HashSet<u16>,
    idle: Idle,
}

/// The name of hypercall `nr`, for messages.
pub fn name(nr: u16) -> String {
    match Hypercall::from_nr(nr) {
        Some(hc) => format!("{hc:?}"),
        None => format!("#{nr}"),
    }
}

/// Reads and checks the argument block at `addr`.
pub fn read_block(
    mem: &GuestMemoryMmap,
    ram_bytes: u64,
    port: u16,
    nr: u16,
    addr: u64,
) -> Result<HypercallBlock, ProtocolError> {
    if !addr.is_multiple_of(8) {
        return Err(ProtocolError::BlockMisaligned {
            name: name(nr),
            port,
            addr,
        });
    }
    let outside = || ProtocolError::BlockOutside {
        name: name(nr),
        port,
        addr,
        ram: ram_bytes,
        size: HYPERCALL_BLOCK_SIZE,
    };
    if addr
        .checked_add(HYPERCALL_BLOCK_SIZE as u64)
        .is_none_or(|end| end > ram_bytes)
    {
        return Err(outside());
    }
    let mut bytes = [0u8; HYPERCALL_BLOCK_SIZE];
    mem.read_slice(&mut bytes, GuestAddress(addr))
        .map_err(|_| outside())?;
    HypercallBlock::from_bytes(&bytes).ok_or_else(outside)
}

/// Writes the result into the block at `addr` (already checked by
/// [`read_block`]).
pub fn write_result(mem: &GuestMemoryMmap, addr: u64, result: Result<i64, Errno>) {
    let (ret, errno) = match result {
        Ok(v) => (v, 0i64),
        Err(e) => (-1, e.0 as i64),
    };
    let mut tail = [0u8; 16];
    tail[..8].copy_from_slice(&ret.to_le_bytes());
    tail[8..].copy_from_slice(&errno.to_le_bytes());
    let at = addr + std::mem::offset_of!(HypercallBlock, ret) as u64;
    // The range was checked by read_block; a failure here cannot happen.
    let _ = mem.write_slice(&tail, GuestAddress(at));
}

impl Hypercalls {
    /// Hypercall state; the clock starts now.
    pub fn new() -> std::io::Result<Self> {
        Ok(Hypercalls {
            started: crate::host_start(),
            unknown_logged: HashSet::new(),
            idle: Idle::new()?,
        })
    }

    /// The calls that need no vmspace: console, exit, clock, no-op.
    /// Returns `None` for a vmspace call (the caller dispatches those).
    pub fn basic(
        &mut self,
        mem: &GuestMemoryMmap,
        ram_bytes: u64,
        pool_pages: u64,
        nr: u16,
        b: &HypercallBlock,
    ) -> Option<(Result<i64, Errno>, Flow)> {
        let a = &b.args;
        let r = match Hypercall::from_nr(nr) {
            Some(Hypercall::Noop) => Ok(0),
            Some(Hypercall::ConsoleWrite) => console::write(mem, ram_bytes, a[0], a[1], a[2]),
            Some(Hypercall::Exit) => return Some((Ok(0), Flow::Exit(a[0] as i32))),
            Some(Hypercall::Clock) if a[0] == CLOCK_REALTIME => Ok(realtime_ns()),
            Some(Hypercall::Clock) => Ok(self.started.elapsed().as_nanos() as i64),
            Some(Hypercall::PoolStats) => Ok(pool_pages as i64),
            Some(Hypercall::ConsoleRead) => self.idle.read(mem, ram_bytes, a[0], a[1]),
            Some(Hypercall::Idle) => {
                let deadline = (a[0] != 0).then(|| self.started + Duration::from_nanos(a[0]));
                Ok(self.idle.wait(deadline))
            }
            Some(_) => return None,
            None => {
                if self.unknown_logged.insert(nr) {
                    log::warn!("guest kernel called unknown hypercall {nr}: ENOSYS");
                }
                Err(Errno::ENOSYS)
            }
        };
        Some((r, Flow::Resume))
    }
}

/// Wall-clock time in nanoseconds since the Unix epoch (0 if the host
/// clock is before it).
fn realtime_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}
