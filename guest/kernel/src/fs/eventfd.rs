//! eventfd (Linux's fs/eventfd.c): a 64-bit counter behind a descriptor.
//! A write of an 8-byte value adds it (a write of any other size is
//! `EINVAL`, a read needs at least 8 bytes); a read returns the counter and
//! resets it to 0 (or, with `EFD_SEMAPHORE`, returns 1 and takes 1).
//! A read of a zero counter, or a write that would take the counter past
//! `0xffff_ffff_ffff_fffe`, waits (or is `EAGAIN` when non-blocking) on
//! the eventfd's channel, which every read and write wakes.

use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::Cell;

use super::device::{Device, IoError, Ready};
use super::vfs::{Sink, Source};
use crate::chan::Chan;
use vkernel_abi::Errno;

/// The largest value the counter holds.
pub const MAX: u64 = 0xffff_ffff_ffff_fffe;

/// An eventfd's counter.
pub struct EventFd {
    id: u64,
    count: Cell<u64>,
    semaphore: bool,
    /// Writes and reads so far (`Ready::in_seq`, `out_seq`).
    writes: Cell<u64>,
    reads: Cell<u64>,
}

/// Eventfd ids for channels: never reused.
static NEXT_ID: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(1);

impl EventFd {
    /// A new counter holding `init`.
    pub fn new(init: u32, semaphore: bool) -> Rc<EventFd> {
        Rc::new(EventFd {
            id: NEXT_ID.fetch_add(1, core::sync::atomic::Ordering::Relaxed),
            count: Cell::new(init.into()),
            semaphore,
            writes: Cell::new(0),
            reads: Cell::new(0),
        })
    }

    fn chan(&self) -> Chan {
        Chan::Eventfd(self.id)
    }

    fn bump(c: &Cell<u64>) {
        c.set(c.get() + 1);
    }
}

impl Device for EventFd {
    fn read(&self, len: usize, out: Sink) -> Result<usize, IoError> {
        if len < 8 {
            return Err(Errno::EINVAL.into());
        }
        let c = self.count.get();
        if c == 0 {
            return Err(IoError::WouldBlock(self.chan()));
        }
        let v = if self.semaphore { 1 } else { c };
        if out(&[&v.to_le_bytes()])? < 8 {
            return Err(Errno::EFAULT.into());
        }
        self.count.set(c - v);
        Self::bump(&self.reads);
        Ok(8)
    }

    fn write(&self, len: usize, src: Source) -> Result<usize, IoError> {
        if len != 8 {
            return Err(Errno::EINVAL.into());
        }
        let mut b = [0u8; 8];
        if src(&mut [&mut b])? < 8 {
            return Err(Errno::EFAULT.into());
        }
        let v = u64::from_le_bytes(b);
        if v == u64::MAX {
            return Err(Errno::EINVAL.into());
        }
        let c = self.count.get();
        if v > MAX - c {
            return Err(IoError::WouldBlock(self.chan()));
        }
        if v > 0 {
            self.count.set(c + v);
            Self::bump(&self.writes);
        }
        Ok(8)
    }

    fn ready(&self) -> Ready {
        let c = self.count.get();
        Ready {
            read: c > 0,
            write: c < MAX,
            // Only an overflow Linux's in-kernel signalling can cause.
            error: c == u64::MAX,
            in_seq: self.writes.get(),
            out_seq: self.reads.get(),
            hangup: false,
        }
    }

    fn pollable(&self) -> bool {
        true
    }

    fn poll_chans(&self, out: &mut Vec<Chan>) {
        out.push(self.chan());
    }

    /// Reads and writes wake the other side through this (see `wake_peer`).
    fn wake_on_close(&self) -> Option<[Chan; 2]> {
        Some([self.chan(), self.chan()])
    }
}
