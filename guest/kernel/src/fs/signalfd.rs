//! signalfd (Linux's fs/signalfd.c): a descriptor that reads the reader's
//! own pending signals of a mask, as `signalfd_siginfo` records, instead
//! of having them delivered (the mask's signals are normally blocked).
//!
//! What a signalfd reads depends on who reads it (Linux uses `current`),
//! so reads are done by the system call layer, which knows the caller
//! (`syscall/signal.rs`); so is readiness: before each system call the
//! caller's pending set is recorded here for poll and epoll to look at.
//! Every signal queued wakes [`Chan::SignalFd`], where blocked readers and
//! pollers of signalfds sleep.

use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::Cell;
use core::sync::atomic::{AtomicU64, Ordering};

use super::device::{Device, IoError, Ready};
use super::vfs::{Sink, Source};
use crate::chan::Chan;
use vkernel_abi::Errno;

/// The pending signals of the task whose system call runs now.
static CALLER_PENDING: AtomicU64 = AtomicU64::new(0);

/// Records the calling task's pending signals (bit `n - 1` for signal n).
pub fn set_caller_pending(set: u64) {
    CALLER_PENDING.store(set, Ordering::Relaxed);
}

/// A signalfd: the signals it reads.
pub struct SignalFd {
    mask: Cell<u64>,
    /// Pending signals in the mask counted so far, for edge-triggered
    /// epoll (each readiness seen anew).
    seen: Cell<u64>,
}

impl SignalFd {
    pub fn new(mask: u64) -> Rc<SignalFd> {
        Rc::new(SignalFd {
            mask: Cell::new(mask),
            seen: Cell::new(0),
        })
    }

    pub fn mask(&self) -> u64 {
        self.mask.get()
    }

    pub fn set_mask(&self, mask: u64) {
        self.mask.set(mask);
    }
}

impl Device for SignalFd {
    /// Reached only without a caller to read for (the system call layer
    /// reads signalfds itself).
    fn read(&self, _len: usize, _out: Sink) -> Result<usize, IoError> {
        Err(Errno::EINVAL.into())
    }

    fn write(&self, _len: usize, _src: Source) -> Result<usize, IoError> {
        Err(Errno::EINVAL.into())
    }

    fn ready(&self) -> Ready {
        let pending = CALLER_PENDING.load(Ordering::Relaxed) & self.mask.get();
        if pending != 0 {
            self.seen.set(self.seen.get() + 1);
        }
        Ready {
            read: pending != 0,
            in_seq: self.seen.get(),
            ..Ready::default()
        }
    }

    fn pollable(&self) -> bool {
        true
    }

    fn poll_chans(&self, out: &mut Vec<Chan>) {
        out.push(Chan::SignalFd);
    }

    fn signalfd(&self) -> Option<&SignalFd> {
        Some(self)
    }
}
