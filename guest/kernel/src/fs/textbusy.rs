//! `ETXTBSY` (Linux's `i_writecount`): a program that runs is a mapping
//! of its file (exec maps its segments), so while any address space runs
//! it, the file cannot be opened for writing or truncated, and a file
//! open for writing cannot be run. Counted per file (device and inode
//! number): writers up, running images down, never both.

use alloc::collections::BTreeMap;
use alloc::rc::Rc;
use core::cell::RefCell;

use super::vfs::{InodeRef, Metadata};
use vkernel_abi::Errno;

type Key = (u64, u64);

/// Per file: open writers (> 0), or images running it (< 0).
struct Counts(RefCell<BTreeMap<Key, i64>>);
// SAFETY: the guest kernel runs on one vCPU with no threads or interrupts;
// nothing else can touch the cell.
unsafe impl Sync for Counts {}

static COUNTS: Counts = Counts(RefCell::new(BTreeMap::new()));

/// Adds `by` to the file's count, unless that would cross zero.
fn add(key: Key, by: i64) -> Result<(), Errno> {
    let mut counts = COUNTS.0.borrow_mut();
    let now = counts.get(&key).copied().unwrap_or(0);
    if now != 0 && (now > 0) != (by > 0) {
        return Err(Errno::ETXTBSY);
    }
    counts.insert(key, now + by);
    Ok(())
}

/// Takes back what [`add`] added.
fn remove(key: Key, by: i64) {
    let mut counts = COUNTS.0.borrow_mut();
    let now = counts.get(&key).copied().unwrap_or(0) - by;
    if now == 0 {
        counts.remove(&key);
    } else {
        counts.insert(key, now);
    }
}

/// A writer of a file (an open file description with write access):
/// `ETXTBSY` while the file runs.
pub struct Writer(Key);

impl Writer {
    pub fn new(meta: &Metadata) -> Result<Writer, Errno> {
        let key = (meta.dev, meta.ino);
        add(key, 1)?;
        Ok(Writer(key))
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        remove(self.0, 1);
    }
}

/// A file that runs: held by each address space whose program it is (a
/// fork shares the hold); `ETXTBSY` while the file is open for writing.
/// It keeps the file itself too, so that its inode number cannot name
/// another file meanwhile.
pub struct Running {
    key: Key,
    _file: InodeRef,
}

impl Running {
    pub fn new(node: &InodeRef) -> Result<Rc<Running>, Errno> {
        let meta = node.meta();
        let key = (meta.dev, meta.ino);
        add(key, -1)?;
        Ok(Rc::new(Running {
            key,
            _file: node.clone(),
        }))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        remove(self.key, -1);
    }
}
