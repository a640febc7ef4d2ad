//! Futexes (Linux's kernel/futex): a task sleeps on a futex word's key
//! until another wakes that key, and the sleep ends with 0 — the call is
//! not restarted, so a wake without a change of the word still wakes.
//!
//! A key names the word as every sharer sees it: in a shared file mapping
//! (MAP_SHARED of a tmpfs file, or shared anonymous memory) the file
//! object and the offset in it, so processes mapping the same page meet
//! there; anywhere else the address space and the address (threads share
//! the space; a FUTEX_PRIVATE_FLAG call skips the region lookup). Linux
//! keys shared words by the page's inode and offset the same way.
//!
//! Waiters are woken oldest first (each sleep takes a sequence number), as
//! Linux's hash-bucket queue does for tasks of equal priority.

use alloc::rc::Rc;
use alloc::vec::Vec;

use super::{Chan, ProcTable, State};
use crate::mm::regions::pager_id;
use crate::mm::SpaceRef;
use vkernel_abi::layout::PAGE_SIZE;
use vkernel_abi::Errno;

/// The key of the futex word at `addr` of `space`.
pub fn key(space: &SpaceRef, addr: u64, private: bool) -> Chan {
    if !private {
        if let Ok(sp) = space.try_borrow() {
            let regions = sp.regions();
            let at = regions.partition_point(|r| r.end <= addr);
            if let Some(r) = regions.get(at).filter(|r| r.start <= addr) {
                if let Some(f) = r.file().filter(|f| f.shared) {
                    let off = f
                        .pgoff
                        .saturating_mul(PAGE_SIZE)
                        .saturating_add(addr - r.start);
                    return Chan::Futex(pager_id(&f.object) as u64, off);
                }
            }
        }
    }
    Chan::Futex(Rc::as_ptr(space) as u64, addr)
}

impl ProcTable {
    /// Puts task `s` to sleep on futex `key` for wakes matching `bitset`,
    /// until `until_ns` (0: none; then the call returns ETIMEDOUT).
    pub fn futex_sleep(&mut self, s: usize, key: Chan, bitset: u32, until_ns: u64) {
        self.sleep(s, key, until_ns, -(Errno::ETIMEDOUT.0 as i64));
        self.futex_seq += 1;
        let p = &mut self.procs[s];
        p.futex_bitset = bitset;
        p.futex_seq = self.futex_seq;
    }

    /// The tasks asleep on `key` whose bitset meets `bitset`, oldest first.
    fn futex_waiters(&self, key: Chan, bitset: u32) -> Vec<usize> {
        let mut w: Vec<usize> = (0..self.procs.len())
            .filter(|&t| {
                let p = &self.procs[t];
                matches!(p.state, State::Blocked { chan, .. } if chan == key)
                    && p.futex_bitset & bitset != 0
            })
            .collect();
        w.sort_by_key(|&t| self.procs[t].futex_seq);
        w
    }

    /// Wakes up to `n` waiters of `key` (matching `bitset`; `n` 0 wakes
    /// one, as Linux's loop counts after waking); their waits return 0.
    /// Returns how many woke.
    pub fn futex_wake(&mut self, key: Chan, n: u32, bitset: u32) -> u32 {
        let n = n.max(1);
        self.wake_some(key, n, bitset)
    }

    /// Wakes at most `n` waiters of `key` (0: none).
    fn wake_some(&mut self, key: Chan, n: u32, bitset: u32) -> u32 {
        let mut woken = 0;
        for t in self.futex_waiters(key, bitset) {
            if woken >= n {
                break;
            }
            let p = &mut self.procs[t];
            p.set_state(State::Runnable);
            p.restart = false;
            p.deadline_ns = 0;
            p.tf.rax = 0;
            woken += 1;
        }
        woken
    }

    /// FUTEX_REQUEUE: wakes up to `nwake` waiters of `from` and moves up
    /// to `nmove` of the rest to `to` (their deadlines kept). Returns how
    /// many were woken or moved.
    pub fn futex_requeue(&mut self, from: Chan, to: Chan, nwake: u32, nmove: u32) -> u32 {
        let woken = self.wake_some(from, nwake, u32::MAX);
        let mut moved = 0;
        for t in self.futex_waiters(from, u32::MAX) {
            if moved >= nmove {
                break;
            }
            let p = &mut self.procs[t];
            if let State::Blocked { until_ns, .. } = p.state {
                p.set_state(State::Blocked { chan: to, until_ns });
                moved += 1;
            }
        }
        woken + moved
    }
}
