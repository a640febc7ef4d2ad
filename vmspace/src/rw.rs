//! `vmspace_pread` / `vmspace_pwrite`: copies between the guest kernel's
//! buffer (guest-physical, in its RAM) and a vmspace's virtual addresses.
//! Like ptrace, they ignore protections (the kernel loads read-only text
//! this way) and bring pages in on demand; a page with no map entry ends
//! the copy with a short count. In a `MAP_VPAGETABLE` mapping the guest's
//! tables translate (protections ignored), and a page they do not map ends
//! the copy the same way.
//!
//! `vmspace_preadv` / `vmspace_pwritev` (an extension) do the same between
//! one contiguous vmspace range and a list of kernel buffers, so a system
//! call that moves many file pages crosses to the host once.

use vkernel_abi::layout::PAGE_SIZE;
use vkernel_abi::{Errno, KernelIovec, VMSPACE_IOV_MAX};
use vm_memory::{Bytes, GuestAddress};

use crate::error::Error;
use crate::registry::VmspaceRegistry;

/// Which way a copy goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direction {
    /// Vmspace → kernel buffer.
    Read,
    /// Kernel buffer → vmspace.
    Write,
}

impl VmspaceRegistry {
    /// `vmspace_pread(id, kbuf, nbyte, off)`: copies `nbyte` bytes at
    /// vmspace address `off` into the kernel's buffer at guest-physical
    /// `kbuf`. Unknown id → `ENOENT`; buffer not wholly in the kernel's RAM
    /// → `EFAULT`; `off + nbyte` wraps → `EINVAL`. Returns the bytes copied,
    /// short if a page has no map entry.
    pub fn pread(&mut self, id: u64, kbuf: u64, nbyte: u64, off: u64) -> Result<usize, Errno> {
        self.copy(id, &[(kbuf, nbyte)], off, Direction::Read)
    }

    /// `vmspace_pwrite(id, kbuf, nbyte, off)`: copies `nbyte` bytes from
    /// the kernel's buffer at guest-physical `kbuf` to vmspace address
    /// `off`. Errors and count as [`VmspaceRegistry::pread`].
    pub fn pwrite(&mut self, id: u64, kbuf: u64, nbyte: u64, off: u64) -> Result<usize, Errno> {
        self.copy(id, &[(kbuf, nbyte)], off, Direction::Write)
    }

    /// `vmspace_preadv(id, iov, iovcnt, off)`: copies the vmspace range
    /// starting at `off` into the kernel buffers of the `iovcnt`
    /// [`KernelIovec`]s at guest-physical `iov`, filling each in turn.
    /// Checked in this order: unknown id → `ENOENT`; `iovcnt` 0 or above
    /// [`VMSPACE_IOV_MAX`] → `EINVAL`; the array not wholly in the
    /// kernel's RAM → `EFAULT`; lengths whose sum overflows → `EINVAL`; a
    /// buffer not wholly in RAM → `EFAULT`; `off` + the sum wraps →
    /// `EINVAL`. Returns the bytes copied, short at the first page with no
    /// map entry (nothing is copied when a check fails).
    pub fn preadv(&mut self, id: u64, iov: u64, iovcnt: u64, off: u64) -> Result<usize, Errno> {
        let bufs = self.iovecs(id, iov, iovcnt)?;
        self.copy(id, &bufs, off, Direction::Read)
    }

    /// `vmspace_pwritev(id, iov, iovcnt, off)`: copies the kernel buffers
    /// in turn to the vmspace range starting at `off`. Errors and count
    /// as [`VmspaceRegistry::preadv`].
    pub fn pwritev(&mut self, id: u64, iov: u64, iovcnt: u64, off: u64) -> Result<usize, Errno> {
        let bufs = self.iovecs(id, iov, iovcnt)?;
        self.copy(id, &bufs, off, Direction::Write)
    }

    /// The `(buffer, length)` pairs of an iovec array, checked (see
    /// [`VmspaceRegistry::preadv`]).
    fn iovecs(&mut self, id: u64, iov: u64, iovcnt: u64) -> Result<Vec<(u64, u64)>, Errno> {
        let (_, host) = self.space(id)?;
        if iovcnt == 0 || iovcnt > VMSPACE_IOV_MAX {
            return Err(Errno::EINVAL);
        }
        // iovcnt <= VMSPACE_IOV_MAX: the product cannot overflow. One
        // read of the whole array.
        let size = std::mem::size_of::<KernelIovec>();
        let mut raw = vec![0u8; iovcnt as usize * size];
        host.ram.read_slice(iov, &mut raw)?;
        let mut bufs = Vec::with_capacity(iovcnt as usize);
        let mut total = 0u64;
        for v in raw.chunks_exact(size) {
            let word = |o: usize| {
                let mut w = [0u8; 8];
                w.copy_from_slice(&v[o..o + 8]);
                u64::from_le_bytes(w)
            };
            let (base, len) = (word(0), word(8));
            total = total.checked_add(len).ok_or(Errno::EINVAL)?;
            bufs.push((base, len));
        }
        // Each buffer is checked against RAM by the copy.
        Ok(bufs)
    }

    /// Copies between the vmspace range at `off` and the kernel buffers
    /// `bufs` (each checked against RAM here, and the total against
    /// wrapping), page by page of the vmspace.
    fn copy(
        &mut self,
        id: u64,
        bufs: &[(u64, u64)],
        off: u64,
        dir: Direction,
    ) -> Result<usize, Errno> {
        let (space, host) = self.space(id)?;
        let mut nbyte = 0u64;
        for &(kbuf, len) in bufs {
            host.ram.check(kbuf, len)?;
            nbyte = nbyte.checked_add(len).ok_or(Errno::EINVAL)?;
        }
        if off.checked_add(nbyte).is_none() {
            return Err(Errno::EINVAL);
        }
        // Where the next kernel byte goes: buffer `seg`, `seg_done` in.
        let (mut seg, mut seg_done) = (0usize, 0u64);
        // Each buffer lies in kernel RAM, so the loop is bounded by RAM
        // times the number of buffers.
        let mut done = 0u64;
        let mut buf = [0u8; PAGE_SIZE as usize];
        while done < nbyte {
            let va = off + done;
            let page = va & !(PAGE_SIZE - 1);
            let in_page = va - page;
            let chunk = (PAGE_SIZE - in_page).min(nbyte - done);
            let Some(entry) = space.map.lookup(va).copied() else {
                break;
            };
            let frame = if entry.is_vpagetable() {
                // Through the guest's tables; a page they do not map ends
                // the copy like a page with no map entry.
                match crate::vpt::translate(host, &entry, page)? {
                    Some(frame) => frame,
                    None => break,
                }
            } else {
                match space.materialize(host, &entry, page) {
                    // Pages are charged as they are touched: a short pool
                    // ends the copy where it is (ENOMEM if nothing moved).
                    Err(Error::OutOfFrames) if done > 0 => break,
                    r => r?,
                }
            };
            // The frame is the host's (pool or RAM, from the map); the
            // kernel's buffers go through the checked RAM accessor.
            let bytes = &mut buf[..chunk as usize];
            let at = frame + in_page;
            if dir == Direction::Read {
                host.mem
                    .read_slice(bytes, GuestAddress(at))
                    .map_err(|source| Error::Memory { gpa: at, source })?;
            }
            // The page's piece spans one or more kernel buffers.
            let mut piece = 0usize;
            while piece < bytes.len() {
                let Some(&(kbuf, len)) = bufs.get(seg) else {
                    break;
                };
                let n = ((len - seg_done) as usize).min(bytes.len() - piece);
                let part = &mut bytes[piece..piece + n];
                match dir {
                    Direction::Read => host.ram.write_slice(kbuf + seg_done, part)?,
                    Direction::Write => host.ram.read_slice(kbuf + seg_done, part)?,
                }
                piece += n;
                seg_done += n as u64;
                if seg_done == len {
                    seg += 1;
                    seg_done = 0;
                }
            }
            if dir == Direction::Write {
                host.mem
                    .write_slice(bytes, GuestAddress(at))
                    .map_err(|source| Error::Memory { gpa: at, source })?;
            }
            done += chunk;
        }
        Ok(done as usize)
    }
}
