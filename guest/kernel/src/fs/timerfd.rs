//! timerfd (Linux's fs/timerfd.c): a timer read through a descriptor.
//! Its expirations are counted (a periodic one adds the intervals it
//! missed); a read of at least 8 bytes returns the count and resets it,
//! or waits (`EAGAIN` when non-blocking) while it is 0; poll sees it
//! readable while the count is not 0.
//!
//! The count is brought up to date whenever the timerfd is read or
//! polled; the scheduler also looks at every armed timerfd when their
//! deadlines pass (they count among the sleeps' deadlines) and wakes
//! their channels, so a reader or poller sleeping on one wakes on time.

use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::Cell;
use core::sync::atomic::{AtomicU64, Ordering};

use super::device::{Device, IoError, Ready};
use super::vfs::{Sink, Source};
use crate::chan::Chan;
use crate::deadline::Arming;
use guestlib::hypercall;
use vkernel_abi::Errno;

/// A timerfd: deadlines on the host's monotonic clock (a realtime one's
/// absolute deadlines are converted when set).
pub struct TimerFd {
    id: u64,
    realtime: bool,
    arming: Cell<Arming>,
    /// Expirations not read yet.
    ticks: Cell<u64>,
    /// Every expiration counted, for edge-triggered epoll.
    counted: Cell<u64>,
}

/// Timerfd ids for channels: never reused.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl TimerFd {
    pub fn new(realtime: bool) -> Rc<TimerFd> {
        Rc::new(TimerFd {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            realtime,
            arming: Cell::new(Arming::default()),
            ticks: Cell::new(0),
            counted: Cell::new(0),
        })
    }

    pub fn chan(&self) -> Chan {
        Chan::TimerFd(self.id)
    }

    /// Its clock is CLOCK_REALTIME.
    pub fn realtime(&self) -> bool {
        self.realtime
    }

    /// Its deadline on the host's monotonic clock, if armed.
    pub fn deadline(&self) -> Option<u64> {
        Some(self.arming.get().deadline).filter(|&d| d != 0)
    }

    /// Counts its expirations up to `now`; whether there were new ones.
    pub fn update(&self, now: u64) -> bool {
        let mut a = self.arming.get();
        let Some(missed) = a.advance(now) else {
            return false;
        };
        self.arming.set(a);
        let n = missed.saturating_add(1);
        self.ticks.set(self.ticks.get().saturating_add(n));
        self.counted.set(self.counted.get().saturating_add(n));
        true
    }

    /// Arms (or disarms) it; the expirations not read are dropped.
    pub fn set(&self, arming: Arming) {
        self.arming.set(arming);
        self.ticks.set(0);
    }

    /// The time left and the interval, ns, at `now`.
    pub fn get(&self, now: u64) -> (u64, u64) {
        self.update(now);
        let a = self.arming.get();
        (a.left(now), a.interval)
    }
}

impl Device for TimerFd {
    fn read(&self, len: usize, out: Sink) -> Result<usize, IoError> {
        if len < 8 {
            return Err(Errno::EINVAL.into());
        }
        self.update(hypercall::clock_ns());
        let n = self.ticks.get();
        if n == 0 {
            return Err(IoError::WouldBlock(self.chan()));
        }
        if out(&[&n.to_le_bytes()])? < 8 {
            return Err(Errno::EFAULT.into());
        }
        self.ticks.set(0);
        Ok(8)
    }

    fn write(&self, _len: usize, _src: Source) -> Result<usize, IoError> {
        Err(Errno::EINVAL.into())
    }

    fn ready(&self) -> Ready {
        self.update(hypercall::clock_ns());
        Ready {
            read: self.ticks.get() > 0,
            in_seq: self.counted.get(),
            ..Ready::default()
        }
    }

    fn pollable(&self) -> bool {
        true
    }

    fn poll_chans(&self, out: &mut Vec<Chan>) {
        out.push(self.chan());
    }

    fn timerfd(&self) -> Option<&TimerFd> {
        Some(self)
    }
}
