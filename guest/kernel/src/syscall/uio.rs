//! Moving file data between open files and process memory: the sinks and
//! sources the file systems call with lists of pieces of their own pages,
//! and the iovec arrays of readv/writev. Under `pmap=host` each list is
//! one preadv/pwritev hypercall straight from or to the file's pages (a
//! single piece one pread/pwrite); under `pmap=guest` a memcpy a piece.

use alloc::vec::Vec;

use crate::mm::uaccess::{self, read_u64};
use crate::mm::SpaceRef;
use vkernel_abi::Errno;

/// A writer into process memory from `addr`: each call copies what it is
/// given to the next addresses. A first piece that cannot be copied at all
/// is `EFAULT`; a later short copy stops the transfer there.
pub struct ToUser<'a> {
    space: &'a SpaceRef,
    addr: u64,
    pub done: usize,
    /// The tag a posted copy fails under (the call's EFAULT), if the
    /// copy may be posted.
    post: Option<u64>,
}

impl<'a> ToUser<'a> {
    pub fn new(space: &'a SpaceRef, addr: u64) -> Self {
        ToUser {
            space,
            addr,
            done: 0,
            post: None,
        }
    }

    /// As [`ToUser::new`], for a call whose copy of pieces that stay as
    /// they are until the next hypercall (`vfs::stable_pieces`: tmpfs
    /// pages) may go with the next RUN: one piece into one anonymous
    /// region, on `pmap=host`, costs no exit of its own; should the host
    /// fail it (no page to give), the call returns EFAULT under `tag`
    /// before the process runs.
    pub fn posting(space: &'a SpaceRef, addr: u64, tag: u64) -> Self {
        ToUser {
            post: Some(tag),
            ..ToUser::new(space, addr)
        }
    }

    /// Copies the pieces `b`, in turn, to the process.
    pub fn put(&mut self, b: &[&[u8]]) -> Result<usize, Errno> {
        let at = self.addr.wrapping_add(self.done as u64);
        let len: usize = b.iter().map(|p| p.len()).sum();
        let n = if !uaccess::user_range(at, len as u64) {
            0
        } else if let (Some(tag), [piece], true) = (self.post, b, crate::fs::vfs::pieces_stable()) {
            if self.space.borrow_mut().post_write_ref(at, piece, tag) {
                len
            } else {
                self.space.borrow_mut().write_v(at, b)
            }
        } else {
            self.space.borrow_mut().write_v(at, b)
        };
        if n == 0 && len > 0 && self.done == 0 {
            return Err(Errno::EFAULT);
        }
        self.done += n;
        Ok(n)
    }
}

/// A reader of process memory from `addr`, as [`ToUser`] writes.
pub struct FromUser<'a> {
    space: &'a SpaceRef,
    addr: u64,
    pub done: usize,
}

impl<'a> FromUser<'a> {
    pub fn new(space: &'a SpaceRef, addr: u64) -> Self {
        FromUser {
            space,
            addr,
            done: 0,
        }
    }

    /// Fills the pieces `b`, in turn, from the process.
    pub fn take(&mut self, b: &mut [&mut [u8]]) -> Result<usize, Errno> {
        let at = self.addr.wrapping_add(self.done as u64);
        let len: usize = b.iter().map(|p| p.len()).sum();
        let n = if uaccess::user_range(at, len as u64) {
            self.space.borrow_mut().read_v(at, b)
        } else {
            0
        };
        if n == 0 && len > 0 && self.done == 0 {
            return Err(Errno::EFAULT);
        }
        self.done += n;
        Ok(n)
    }
}

/// The `(base, len)` pairs of an iovec array, checked as Linux checks
/// them: at most `UIO_MAXIOV` entries (`EINVAL`), no length that would
/// make the total overflow a `ssize_t` (`EINVAL`).
pub fn iovecs(space: &SpaceRef, iov: u64, count: u64) -> Result<Vec<(u64, u64)>, Errno> {
    if count > linux_raw_sys::general::UIO_MAXIOV as u64 {
        return Err(Errno::EINVAL);
    }
    let mut v = Vec::with_capacity(count as usize);
    let mut total: u64 = 0;
    for i in 0..count {
        let at = iov.checked_add(16 * i).ok_or(Errno::EFAULT)?;
        let base = read_u64(space, at)?;
        let len = read_u64(space, at + 8)?;
        total = total.checked_add(len).ok_or(Errno::EINVAL)?;
        if total > i64::MAX as u64 {
            return Err(Errno::EINVAL);
        }
        v.push((base, len));
    }
    Ok(v)
}
