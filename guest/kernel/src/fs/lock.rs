//! Advisory file locks, kept as Linux keeps them (fs/locks.c), per inode:
//! - record locks (fcntl `F_SETLK`): byte ranges owned by a process
//!   ([`Owner::Process`]) or, for `F_OFD_SETLK`, by an open file
//!   description ([`Owner::File`]); both kinds share one list per inode
//!   and conflict with each other. An owner's locks never overlap and
//!   same-type neighbours are merged, so locking and unlocking split and
//!   join ranges;
//! - flock locks: one per open file description, shared or exclusive, in
//!   a list of their own (flock and record locks never conflict, as on
//!   Linux).
//!
//! An inode is named by `(st_dev, st_ino)`, so a lock works on any open
//! file (a pipe, a device, a procfs file) as on Linux. A description
//! owns its locks through a `Weak`: once its last descriptor closes, its
//! locks are dead and [`Locks::prune_dead`] drops them. This table only
//! keeps the locks; who sleeps for them and who is woken is the process
//! table's business (`proc/mod.rs`), which drains [`Locks::take_changed`].

use alloc::rc::{Rc, Weak};
use alloc::vec::Vec;

use vkernel_abi::Errno;

use super::file::OpenFile;
use crate::param::MAX_LOCKS;

/// The end of a lock that runs to the end of the file and beyond
/// (Linux's `OFFSET_MAX`); ends are inclusive, so `end + 1` never wraps.
pub const OFFSET_MAX: u64 = i64::MAX as u64;

/// Most owners a deadlock check follows (Linux's `MAX_DEADLK_ITERATIONS`).
const MAX_DEADLK_ITERATIONS: usize = 10;

/// An inode: `(st_dev, st_ino)`.
pub type Key = (u64, u64);

/// The inode an open file's locks are kept on.
pub fn key(f: &OpenFile) -> Key {
    let m = f.meta();
    (m.dev, m.ino)
}

/// Who holds a record lock.
#[derive(Clone)]
pub enum Owner {
    /// A POSIX lock: the process (pid).
    Process(u32),
    /// An OFD lock: the open file description.
    File(Weak<OpenFile>),
}

impl Owner {
    /// The owner of `f`'s OFD locks.
    pub fn file(f: &Rc<OpenFile>) -> Owner {
        Owner::File(Rc::downgrade(f))
    }

    fn same(&self, other: &Owner) -> bool {
        match (self, other) {
            (Owner::Process(a), Owner::Process(b)) => a == b,
            (Owner::File(a), Owner::File(b)) => Weak::ptr_eq(a, b),
            _ => false,
        }
    }

    fn alive(&self) -> bool {
        match self {
            Owner::Process(_) => true,
            Owner::File(w) => w.strong_count() > 0,
        }
    }
}

/// A lock's type, with `F_RDLCK`, `F_WRLCK`, `F_UNLCK` as numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockType {
    Read = 0,
    Write = 1,
    Unlock = 2,
}

impl LockType {
    /// The type `l_type` names, if any.
    pub fn from_raw(t: i16) -> Option<LockType> {
        match t {
            0 => Some(LockType::Read),
            1 => Some(LockType::Write),
            2 => Some(LockType::Unlock),
            _ => None,
        }
    }
}

/// One record lock on `[start, end]` (inclusive).
#[derive(Clone)]
pub struct RangeLock {
    pub owner: Owner,
    pub ty: LockType,
    pub start: u64,
    pub end: u64,
}

impl RangeLock {
    fn overlaps(&self, start: u64, end: u64) -> bool {
        self.start <= end && start <= self.end
    }

    /// Whether this lock stops `owner` from taking `ty` (a read or write
    /// lock) on `[start, end]` (Linux's `posix_locks_conflict`: another
    /// owner, an overlap, and a write lock on either side).
    fn conflicts(&self, owner: &Owner, ty: LockType, start: u64, end: u64) -> bool {
        self.owner.alive()
            && !self.owner.same(owner)
            && self.overlaps(start, end)
            && (self.ty == LockType::Write || ty == LockType::Write)
    }

    fn same_as(&self, o: &RangeLock) -> bool {
        self.owner.same(&o.owner) && self.ty == o.ty && self.start == o.start && self.end == o.end
    }
}

/// A flock lock: its description and whether it is exclusive.
struct FlockLock {
    file: Weak<OpenFile>,
    exclusive: bool,
}

/// The locks of one inode.
struct InodeLocks {
    key: Key,
    /// Record locks: each owner's together, by start (the order Linux
    /// keeps, which decides the lock `F_GETLK` reports).
    ranges: Vec<RangeLock>,
    flocks: Vec<FlockLock>,
}

/// Why a lock was not granted.
pub enum Refused {
    /// Held by another owner: the first conflicting lock's (for a flock
    /// lock, [`Owner::File`] of the holder).
    Conflict(Owner),
    /// No room for another lock (`ENOLCK`).
    Errno(Errno),
}

/// Every lock in the system.
#[derive(Default)]
pub struct Locks {
    inodes: Vec<InodeLocks>,
    /// Locks held, of both kinds (at most [`MAX_LOCKS`]).
    count: usize,
    /// Inodes whose locks changed since the last [`Locks::take_changed`]:
    /// whoever sleeps on them may now get what it waits for.
    changed: Vec<Key>,
    /// `(waiter, holder)`: process `waiter` sleeps in `F_SETLKW` for a
    /// lock of process `holder` (Linux's `blocked_hash`, for deadlock
    /// detection).
    waits: Vec<(u32, u32)>,
}

impl Locks {
    /// Whether no lock is held anywhere (closes skip the work then).
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn inode(&self, key: Key) -> Option<&InodeLocks> {
        self.inodes.iter().find(|i| i.key == key)
    }

    /// The locks of `key`, made if it has none.
    fn inode_mut(&mut self, key: Key) -> Result<&mut InodeLocks, Errno> {
        let at = match self.inodes.iter().position(|i| i.key == key) {
            Some(at) => at,
            None => {
                self.inodes.try_reserve(1).map_err(|_| Errno::ENOLCK)?;
                self.inodes.push(InodeLocks {
                    key,
                    ranges: Vec::new(),
                    flocks: Vec::new(),
                });
                self.inodes.len() - 1
            }
        };
        Ok(&mut self.inodes[at])
    }

    fn mark_changed(&mut self, key: Key) {
        if !self.changed.contains(&key) && self.changed.try_reserve(1).is_ok() {
            self.changed.push(key);
        }
    }

    /// The inodes whose locks changed since the last call.
    pub fn take_changed(&mut self) -> Vec<Key> {
        core::mem::take(&mut self.changed)
    }

    /// Drops inodes that hold no lock, and recounts.
    fn tidy(&mut self) {
        self.inodes
            .retain(|i| !(i.ranges.is_empty() && i.flocks.is_empty()));
        self.count = self
            .inodes
            .iter()
            .map(|i| i.ranges.len() + i.flocks.len())
            .sum();
    }

    /// `F_GETLK`: the first lock that would stop `owner` from taking `ty`
    /// on `[start, end]` of `key`; for [`LockType::Unlock`] (only
    /// `F_OFD_GETLK` asks that) the first of `owner`'s own locks there,
    /// as Linux's `posix_test_locks_conflict` answers.
    pub fn test(
        &self,
        key: Key,
        owner: &Owner,
        ty: LockType,
        start: u64,
        end: u64,
    ) -> Option<RangeLock> {
        self.inode(key)?
            .ranges
            .iter()
            .find(|l| match ty {
                LockType::Unlock => l.owner.same(owner) && l.overlaps(start, end),
                _ => l.conflicts(owner, ty, start, end),
            })
            .cloned()
    }

    /// `F_SETLK`: gives `owner` a lock of type `ty` on `[start, end]` of
    /// `key` (or unlocks the range for [`LockType::Unlock`]), splitting
    /// and merging its own locks as Linux's `posix_lock_inode` does. A
    /// conflict changes nothing.
    pub fn set(
        &mut self,
        key: Key,
        owner: Owner,
        ty: LockType,
        start: u64,
        end: u64,
    ) -> Result<(), Refused> {
        let r = self.set_in(key, owner, ty, start, end);
        self.tidy();
        r
    }

    fn set_in(
        &mut self,
        key: Key,
        owner: Owner,
        ty: LockType,
        start: u64,
        end: u64,
    ) -> Result<(), Refused> {
        if ty == LockType::Unlock && self.inode(key).is_none() {
            return Ok(());
        }
        let count = self.count;
        let inode = self.inode_mut(key).map_err(Refused::Errno)?;
        if ty != LockType::Unlock {
            if let Some(c) = inode
                .ranges
                .iter()
                .find(|l| l.conflicts(&owner, ty, start, end))
            {
                return Err(Refused::Conflict(c.owner.clone()));
            }
        }
        // The owner's locks after the change: same-type locks touching
        // the range merge into it, others lose the part it covers.
        let (mut s, mut e) = (start, end);
        let mut mine: Vec<RangeLock> = Vec::new();
        let mut old_mine = 0;
        for l in inode.ranges.iter().filter(|l| l.owner.same(&owner)) {
            old_mine += 1;
            mine.try_reserve(2)
                .map_err(|_| Refused::Errno(Errno::ENOLCK))?;
            if ty != LockType::Unlock && l.ty == ty && l.start <= end + 1 && start <= l.end + 1 {
                s = s.min(l.start);
                e = e.max(l.end);
            } else if l.overlaps(start, end) {
                if l.start < start {
                    mine.push(RangeLock {
                        end: start - 1,
                        ..l.clone()
                    });
                }
                if l.end > end {
                    mine.push(RangeLock {
                        start: end + 1,
                        ..l.clone()
                    });
                }
            } else {
                mine.push(l.clone());
            }
        }
        if ty != LockType::Unlock {
            mine.try_reserve(1)
                .map_err(|_| Refused::Errno(Errno::ENOLCK))?;
            mine.push(RangeLock {
                owner: owner.clone(),
                ty,
                start: s,
                end: e,
            });
        }
        mine.sort_unstable_by_key(|l| l.start);
        if mine.len() > old_mine && count + (mine.len() - old_mine) > MAX_LOCKS {
            return Err(Refused::Errno(Errno::ENOLCK));
        }
        let unchanged = mine.len() == old_mine
            && inode
                .ranges
                .iter()
                .filter(|l| l.owner.same(&owner))
                .zip(&mine)
                .all(|(a, b)| a.same_as(b));
        if !unchanged {
            // The owner's locks go where its first one was (or at the end).
            let mut ranges = Vec::new();
            ranges
                .try_reserve(inode.ranges.len() - old_mine + mine.len())
                .map_err(|_| Refused::Errno(Errno::ENOLCK))?;
            let mut pending = Some(mine);
            for l in inode.ranges.drain(..) {
                if l.owner.same(&owner) {
                    if let Some(m) = pending.take() {
                        ranges.extend(m);
                    }
                } else {
                    ranges.push(l);
                }
            }
            if let Some(m) = pending {
                ranges.extend(m);
            }
            inode.ranges = ranges;
            self.mark_changed(key);
        }
        Ok(())
    }

    /// flock: gives description `file` a shared or exclusive lock on
    /// `key` (`Some(exclusive)`), or drops its lock (`None`). Converting
    /// drops the old lock first, as Linux does, so a conversion that
    /// conflicts leaves the description with none.
    pub fn flock(
        &mut self,
        key: Key,
        file: &Rc<OpenFile>,
        exclusive: Option<bool>,
    ) -> Result<(), Refused> {
        let r = self.flock_in(key, file, exclusive);
        self.tidy();
        r
    }

    fn flock_in(
        &mut self,
        key: Key,
        file: &Rc<OpenFile>,
        exclusive: Option<bool>,
    ) -> Result<(), Refused> {
        if exclusive.is_none() && self.inode(key).is_none() {
            return Ok(());
        }
        let count = self.count;
        let me = Rc::downgrade(file);
        let inode = self.inode_mut(key).map_err(Refused::Errno)?;
        let mut removed = false;
        if let Some(i) = inode.flocks.iter().position(|l| Weak::ptr_eq(&l.file, &me)) {
            if Some(inode.flocks[i].exclusive) == exclusive {
                return Ok(());
            }
            inode.flocks.remove(i);
            removed = true;
        }
        let result = match exclusive {
            None => Ok(()),
            Some(ex) => {
                let conflict = inode
                    .flocks
                    .iter()
                    .find(|l| l.file.strong_count() > 0 && (ex || l.exclusive));
                if let Some(c) = conflict {
                    Err(Refused::Conflict(Owner::File(c.file.clone())))
                } else if (!removed && count >= MAX_LOCKS) || inode.flocks.try_reserve(1).is_err() {
                    Err(Refused::Errno(Errno::ENOLCK))
                } else {
                    inode.flocks.push(FlockLock {
                        file: me,
                        exclusive: ex,
                    });
                    Ok(())
                }
            }
        };
        if removed {
            self.mark_changed(key);
        }
        result
    }

    /// Drops every record lock of process `pid` on `key` (a close of any
    /// descriptor of the file, as POSIX says).
    pub fn release_process_on(&mut self, key: Key, pid: u32) {
        let owner = Owner::Process(pid);
        let Some(inode) = self.inodes.iter_mut().find(|i| i.key == key) else {
            return;
        };
        let before = inode.ranges.len();
        inode.ranges.retain(|l| !l.owner.same(&owner));
        if inode.ranges.len() != before {
            self.mark_changed(key);
            self.tidy();
        }
    }

    /// Drops every record lock of process `pid` (it exited), and its wait.
    pub fn release_process(&mut self, pid: u32) {
        let owner = Owner::Process(pid);
        let mut changed = Vec::new();
        for inode in self.inodes.iter_mut() {
            let before = inode.ranges.len();
            inode.ranges.retain(|l| !l.owner.same(&owner));
            if inode.ranges.len() != before {
                changed.push(inode.key);
            }
        }
        for key in changed {
            self.mark_changed(key);
        }
        self.unwait(pid);
        self.tidy();
    }

    /// Drops the locks (OFD and flock) of descriptions no descriptor
    /// holds any more (Linux's `locks_remove_file` at the last `fput`).
    pub fn prune_dead(&mut self) {
        let mut changed = Vec::new();
        for inode in self.inodes.iter_mut() {
            let before = inode.ranges.len() + inode.flocks.len();
            inode.ranges.retain(|l| l.owner.alive());
            inode.flocks.retain(|l| l.file.strong_count() > 0);
            if inode.ranges.len() + inode.flocks.len() != before {
                changed.push(inode.key);
            }
        }
        for key in changed {
            self.mark_changed(key);
        }
        self.tidy();
    }

    /// Records that process `waiter` sleeps for a lock `holder` holds.
    pub fn wait(&mut self, waiter: u32, holder: u32) {
        self.unwait(waiter);
        if self.waits.try_reserve(1).is_ok() {
            self.waits.push((waiter, holder));
        }
    }

    /// Process `waiter` no longer waits.
    pub fn unwait(&mut self, waiter: u32) {
        self.waits.retain(|&(w, _)| w != waiter);
    }

    /// Whether `caller` waiting for a lock of `holder` would close a
    /// circle of processes each waiting for the next (Linux's
    /// `posix_locks_deadlock`: the chain of owners, at most
    /// [`MAX_DEADLK_ITERATIONS`] long). `waiting(pid)` says whether a
    /// recorded waiter still sleeps for a lock (one woken or interrupted
    /// waits no more).
    pub fn deadlock(&self, caller: u32, holder: u32, waiting: impl Fn(u32) -> bool) -> bool {
        let mut owner = holder;
        for _ in 0..=MAX_DEADLK_ITERATIONS {
            let next = self
                .waits
                .iter()
                .find(|&&(w, _)| w == owner && waiting(w))
                .map(|&(_, h)| h);
            match next {
                Some(h) if h == caller => return true,
                Some(h) => owner = h,
                None => return false,
            }
        }
        false
    }
}
