//! epoll (Linux's fs/eventpoll.c), over the kernel's sleep and wakeup
//! channels rather than wait-queue callbacks: an instance keeps its
//! interest list, and `epoll_wait` scans it, reporting the ready items and
//! sleeping on every item's channels when none is (see `syscall/poll.rs`).
//!
//! - Level-triggered items are reported while ready.
//! - Edge-triggered (`EPOLLET`) items are reported when ready and their
//!   file had an event of the kind they wait for (`Ready::in_seq` /
//!   `out_seq` moved) since they were last reported: each write to a pipe
//!   reports its reader again, as Linux's wakeups do.
//! - `EPOLLONESHOT` items are disabled once reported until
//!   `EPOLL_CTL_MOD` arms them again.
//! - An item is keyed by (open file, fd) and holds its open file weakly:
//!   it goes when the file's last reference does (closing one of two
//!   descriptors of the file keeps it, as on Linux).
//! - An epoll instance is itself pollable (readable while an item would be
//!   reported) and may be nested; adding one to another that it contains
//!   is `ELOOP`, as is nesting deeper than Linux's limit.

use alloc::rc::{Rc, Weak};
use alloc::vec::Vec;
use core::cell::RefCell;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

use linux_raw_sys::general::{
    EPOLLERR, EPOLLET, EPOLLEXCLUSIVE, EPOLLHUP, EPOLLIN, EPOLLONESHOT, EPOLLOUT, EPOLLPRI,
    EPOLLRDBAND, EPOLLRDNORM, EPOLLWAKEUP, EPOLLWRBAND, EPOLLWRNORM, EPOLL_CTL_ADD, EPOLL_CTL_DEL,
    EPOLL_CTL_MOD,
};
use vkernel_abi::Errno;

use super::device::{Device, IoError, Ready};
use super::file::OpenFile;
use super::vfs::{Sink, Source};
use crate::chan::Chan;

/// Flags that steer an item rather than name events.
const PRIVATE: u32 = EPOLLONESHOT | EPOLLET | EPOLLWAKEUP | EPOLLEXCLUSIVE;
/// Events `EPOLLEXCLUSIVE` may come with (Linux's `EPOLLEXCLUSIVE_OK_BITS`).
const EXCLUSIVE_OK: u32 =
    EPOLLIN | EPOLLOUT | EPOLLERR | EPOLLHUP | EPOLLWAKEUP | EPOLLET | EPOLLEXCLUSIVE;
/// Events that count as input or output for edge triggering.
const IN_EVENTS: u32 = EPOLLIN | EPOLLRDNORM | EPOLLRDBAND | EPOLLPRI | EPOLLHUP | EPOLLERR;
const OUT_EVENTS: u32 = EPOLLOUT | EPOLLWRNORM | EPOLLWRBAND | EPOLLERR;
/// Most instances nested inside one another (Linux's `EPOLL_MAX_NESTS`).
pub const MAX_NESTS: usize = 4;

/// One watched file.
struct Item {
    fd: i32,
    file: Weak<OpenFile>,
    /// Requested events plus `PRIVATE` flags (`EPOLLERR | EPOLLHUP`
    /// always added); a disabled one-shot item keeps only the flags.
    events: u32,
    data: u64,
    /// The file's event count when last reported (edge triggering).
    last: Option<u64>,
}

impl Item {
    /// What to report now, if anything, and the event count it reports.
    fn check(&self, file: &OpenFile) -> Option<(u32, u64)> {
        let (mask, [in_seq, out_seq]) = file.poll();
        let ev = mask & self.events & !PRIVATE;
        if ev == 0 {
            return None;
        }
        // The count of the events the item waits for (both only grow).
        let mut seq = 0u64;
        if self.events & IN_EVENTS != 0 {
            seq = seq.wrapping_add(in_seq);
        }
        if self.events & OUT_EVENTS != 0 {
            seq = seq.wrapping_add(out_seq);
        }
        if self.events & EPOLLET != 0 && self.last == Some(seq) {
            return None;
        }
        Some((ev, seq))
    }
}

/// An epoll instance.
pub struct Epoll {
    id: u64,
    items: RefCell<Vec<Item>>,
}

/// Instance ids for channels: never reused.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);
/// How deep a readiness check of nested instances is now (a guard: the
/// nesting limit is also checked when one is added).
static DEPTH: AtomicUsize = AtomicUsize::new(0);

impl Epoll {
    pub fn new() -> Rc<Epoll> {
        Rc::new(Epoll {
            id: NEXT_ID.fetch_add(1, Relaxed),
            items: RefCell::new(Vec::new()),
        })
    }

    /// The channel woken when the interest list changes.
    pub fn chan(&self) -> Chan {
        Chan::Epoll(self.id)
    }

    /// Drops the items whose file is gone.
    fn purge(&self) {
        self.items
            .borrow_mut()
            .retain(|i| i.file.strong_count() > 0);
    }

    /// epoll_ctl on (`fd`, `file`): the caller checked the descriptors,
    /// that `file` is pollable and not this instance.
    pub fn ctl(
        &self,
        op: u32,
        fd: i32,
        file: &Rc<OpenFile>,
        events: u32,
        data: u64,
    ) -> Result<(), Errno> {
        if events & EPOLLEXCLUSIVE != 0 {
            let nested = file.device().is_some_and(|d| d.epoll().is_some());
            if op == EPOLL_CTL_MOD || events & !EXCLUSIVE_OK != 0 || nested {
                return Err(Errno::EINVAL);
            }
        }
        self.purge();
        let mut items = self.items.borrow_mut();
        let at = items
            .iter()
            .position(|i| i.fd == fd && core::ptr::eq(i.file.as_ptr(), Rc::as_ptr(file)));
        let events = events | EPOLLERR | EPOLLHUP;
        match (op, at) {
            (EPOLL_CTL_ADD, Some(_)) => Err(Errno::EEXIST),
            (EPOLL_CTL_ADD, None) => {
                if let Some(inner) = file.device().and_then(|d| d.epoll()) {
                    if inner.contains(self, 0)? {
                        return Err(Errno::ELOOP);
                    }
                }
                items.push(Item {
                    fd,
                    file: Rc::downgrade(file),
                    events,
                    data,
                    last: None,
                });
                Ok(())
            }
            (EPOLL_CTL_MOD, Some(i)) => {
                if items[i].events & EPOLLEXCLUSIVE != 0 {
                    return Err(Errno::EINVAL);
                }
                items[i].events = events;
                items[i].data = data;
                items[i].last = None;
                Ok(())
            }
            (EPOLL_CTL_DEL, Some(i)) => {
                items.remove(i);
                Ok(())
            }
            (EPOLL_CTL_MOD | EPOLL_CTL_DEL, None) => Err(Errno::ENOENT),
            _ => Err(Errno::EINVAL),
        }
    }

    /// Whether `target` is this instance or nested in it (below `depth`
    /// levels already walked); `ELOOP` past the nesting limit.
    fn contains(&self, target: &Epoll, depth: usize) -> Result<bool, Errno> {
        if core::ptr::eq(self, target) {
            return Ok(true);
        }
        if depth >= MAX_NESTS {
            return Err(Errno::ELOOP);
        }
        let items = self.items.try_borrow().map_err(|_| Errno::ELOOP)?;
        for i in items.iter() {
            if let Some(f) = i.file.upgrade() {
                if let Some(inner) = f.device().and_then(|d| d.epoll()) {
                    if inner.contains(target, depth + 1)? {
                        return Ok(true);
                    }
                }
            }
        }
        Ok(false)
    }

    /// Takes up to `max` events to report, as `(events, data)`: the
    /// reported edge-triggered items wait for their next event, one-shot
    /// ones are disabled, and the reported items move to the end of the
    /// list so the next call starts with the others (Linux's fairness).
    pub fn collect(&self, max: usize, out: &mut Vec<(u32, u64)>) {
        self.purge();
        let _guard = Nest::enter();
        let mut items = self.items.borrow_mut();
        let mut reported = Vec::new();
        for (n, item) in items.iter_mut().enumerate() {
            if out.len() >= max {
                break;
            }
            let Some(file) = item.file.upgrade() else {
                continue;
            };
            let Some((ev, seq)) = item.check(&file) else {
                continue;
            };
            out.push((ev, item.data));
            item.last = Some(seq);
            if item.events & EPOLLONESHOT != 0 {
                item.events &= PRIVATE;
            }
            reported.push(n);
        }
        if !reported.is_empty() {
            let mut moved = Vec::with_capacity(reported.len());
            for &n in reported.iter().rev() {
                moved.push(items.remove(n));
            }
            items.extend(moved.into_iter().rev());
        }
    }

    /// Whether an `epoll_wait` would report something now (nothing is
    /// taken), and the sum of the items' event counts (the instance's
    /// own, for an instance nested with `EPOLLET`).
    fn pending(&self) -> (bool, u64) {
        let Some(_guard) = Nest::enter() else {
            return (false, 0);
        };
        let Ok(items) = self.items.try_borrow() else {
            return (false, 0);
        };
        let (mut any, mut seq) = (false, 0u64);
        for i in items.iter() {
            if let Some(f) = i.file.upgrade() {
                let (_, [a, b]) = f.poll();
                seq = seq.wrapping_add(a).wrapping_add(b);
                any |= i.check(&f).is_some();
            }
        }
        (any, seq)
    }

    /// The channels a wait for this instance sleeps on: its own and its
    /// items'.
    pub fn wait_chans(&self, out: &mut Vec<Chan>) {
        out.push(self.chan());
        let Some(_guard) = Nest::enter() else {
            return;
        };
        if let Ok(items) = self.items.try_borrow() {
            for f in items.iter().filter_map(|i| i.file.upgrade()) {
                f.poll_chans(out);
            }
        }
    }
}

/// One level of a readiness check through nested instances; `None` past
/// the nesting limit.
struct Nest;

impl Nest {
    fn enter() -> Option<Nest> {
        if DEPTH.fetch_add(1, Relaxed) > MAX_NESTS + 1 {
            DEPTH.fetch_sub(1, Relaxed);
            return None;
        }
        Some(Nest)
    }
}

impl Drop for Nest {
    fn drop(&mut self) {
        DEPTH.fetch_sub(1, Relaxed);
    }
}

/// An epoll descriptor's device: readable while an item would be
/// reported; read and write are `EINVAL`, as on Linux.
pub struct EpollDev(pub Rc<Epoll>);

impl Device for EpollDev {
    fn read(&self, _: usize, _: Sink) -> Result<usize, IoError> {
        Err(Errno::EINVAL.into())
    }
    fn write(&self, _: usize, _: Source) -> Result<usize, IoError> {
        Err(Errno::EINVAL.into())
    }
    fn ready(&self) -> Ready {
        let (read, in_seq) = self.0.pending();
        Ready {
            read,
            in_seq,
            ..Ready::default()
        }
    }
    fn pollable(&self) -> bool {
        true
    }
    fn poll_chans(&self, out: &mut Vec<Chan>) {
        self.0.wait_chans(out);
    }
    fn epoll(&self) -> Option<&Epoll> {
        Some(&self.0)
    }
}
