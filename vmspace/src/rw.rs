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
//!
//! `vmspace_copy` (an extension) copies from one vmspace to another (a
//! pipe's writer to a reader waiting in `read`): one exit, no kernel
//! buffer in between.

use vkernel_abi::layout::PAGE_SIZE;
use vkernel_abi::{Errno, KernelIovec, VMSPACE_COPY_MAX, VMSPACE_IOV_MAX};
use vm_memory::{GuestAddress, GuestMemoryBackend};

use crate::error::Error;
use crate::map::MapEntry;
use crate::registry::VmspaceRegistry;
use crate::space::{Host, Vmspace};

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
    /// wrapping); see [`walk_copy`].
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
        let mut kernel = Peer::Kernel {
            bufs,
            seg: 0,
            seg_done: 0,
        };
        walk_copy(space, host, &mut kernel, nbyte, off, dir)
    }

    /// `vmspace_copy(dst, dst_addr, src, src_addr, len)`: copies `len`
    /// bytes from vmspace `src` at `src_addr` to vmspace `dst` at
    /// `dst_addr` (they may be the same vmspace). Checked in this order:
    /// `dst` unknown → `ENOENT`; `src` unknown → `ENOENT`; `len` above
    /// [`VMSPACE_COPY_MAX`] → `EINVAL`; either range wraps → `EINVAL`.
    /// The source is read whole into a host buffer first, short at its
    /// first page with no map entry, then what came is written to the
    /// destination, short the same way: ranges that share pages (one
    /// vmspace, or shared memory of two) copy as if through a pipe's ring.
    /// Returns the bytes that reached the destination.
    pub fn copy_between(
        &mut self,
        dst: u64,
        dst_addr: u64,
        src: u64,
        src_addr: u64,
        len: u64,
    ) -> Result<usize, Errno> {
        self.space(dst)?;
        self.space(src)?;
        if len > VMSPACE_COPY_MAX
            || dst_addr.checked_add(len).is_none()
            || src_addr.checked_add(len).is_none()
        {
            return Err(Errno::EINVAL);
        }
        let mut bytes = vec![0u8; len as usize];
        let (space, host) = self.space(src)?;
        let mut from = Peer::Host {
            buf: &mut bytes,
            at: 0,
        };
        let got = walk_copy(space, host, &mut from, len, src_addr, Direction::Read)?;
        if got == 0 {
            return Ok(0);
        }
        let (space, host) = self.space(dst)?;
        let mut to = Peer::Host {
            buf: &mut bytes[..got],
            at: 0,
        };
        walk_copy(space, host, &mut to, got as u64, dst_addr, Direction::Write)
    }
}

/// Copies between the vmspace range at `off` and `peer` (`nbyte` bytes,
/// which `peer` holds room or data for). The vmspace side is walked page
/// by page (one map lookup per map entry, not per page), and the data
/// moves in runs: pages whose frames follow each other in guest-physical
/// memory (the pool hands out neighbours, a file's pages are often
/// neighbours in RAM) are one copy per peer buffer they meet, straight
/// between the two host mappings (no bounce buffer). A 1 MiB copy took 256
/// lookups and 512 checked 4 KiB copies before.
fn walk_copy(
    space: &mut Vmspace,
    host: &mut Host,
    peer: &mut Peer,
    nbyte: u64,
    off: u64,
    dir: Direction,
) -> Result<usize, Errno> {
    // The frames gathered so far and not yet copied: `run_len` bytes
    // from guest-physical `run_start`.
    let (mut run_start, mut run_len) = (0u64, 0u64);
    // The map entry of the last page (valid while `va < entry.end`).
    let mut entry: Option<MapEntry> = None;
    // The peer's buffers lie in kernel RAM or the host's heap, so the
    // loop is bounded by their total.
    let mut done = 0u64;
    while done < nbyte {
        let va = off + done;
        let page = va & !(PAGE_SIZE - 1);
        let in_page = va - page;
        let chunk = (PAGE_SIZE - in_page).min(nbyte - done);
        let current = match entry {
            Some(e) if e.start <= va && va < e.end => e,
            _ => match space.map.lookup(va).copied() {
                Some(e) => {
                    entry = Some(e);
                    e
                }
                None => break,
            },
        };
        let frame = if current.is_vpagetable() {
            // Through the guest's tables; a page they do not map ends
            // the copy like a page with no map entry.
            match crate::vpt::translate(host, &current, page)? {
                Some(frame) => frame,
                None => break,
            }
        } else {
            match space.materialize(host, &current, page) {
                // Pages are charged as they are touched: a short pool
                // ends the copy where it is (ENOMEM if nothing moved).
                Err(Error::OutOfFrames) if done > 0 => break,
                r => r?,
            }
        };
        let at = frame + in_page;
        if run_len > 0 && run_start + run_len != at {
            copy_run(host, run_start, run_len, peer, dir)?;
            run_len = 0;
        }
        if run_len == 0 {
            run_start = at;
        }
        run_len += chunk;
        done += chunk;
    }
    if run_len > 0 {
        copy_run(host, run_start, run_len, peer, dir)?;
    }
    Ok(done as usize)
}

/// The other side of a copy with a vmspace.
enum Peer<'a> {
    /// The guest kernel's buffers (guest-physical, checked against RAM),
    /// filled or drained in turn: the next byte is `seg_done` bytes into
    /// buffer `seg`.
    Kernel {
        bufs: &'a [(u64, u64)],
        seg: usize,
        seg_done: u64,
    },
    /// A host buffer (`vmspace_copy`'s bytes in between), from `at` on.
    Host { buf: &'a mut [u8], at: usize },
}

/// Copies between the `len` bytes of vmspace frames at guest-physical
/// `start` (contiguous) and the kernel buffers from `kernel` on, which
/// moves past them. The run is one host slice unless it crosses from one
/// guest-memory region into another (RAM into the pool): then it goes a
/// page at a time, each page lying in one region.
fn copy_run(
    host: &Host,
    start: u64,
    len: u64,
    peer: &mut Peer,
    dir: Direction,
) -> Result<(), Errno> {
    if host
        .mem
        .get_slice(GuestAddress(start), len as usize)
        .is_ok()
    {
        return copy_frames(host, start, len, peer, dir);
    }
    let mut at = start;
    let end = start + len;
    while at < end {
        let piece = (PAGE_SIZE - (at & (PAGE_SIZE - 1))).min(end - at);
        copy_frames(host, at, piece, peer, dir)?;
        at += piece;
    }
    Ok(())
}

/// [`copy_run`]'s copy of frames lying in one guest-memory region.
fn copy_frames(
    host: &Host,
    start: u64,
    len: u64,
    peer: &mut Peer,
    dir: Direction,
) -> Result<(), Errno> {
    let frames = host
        .mem
        .get_slice(GuestAddress(start), len as usize)
        .map_err(|source| Errno::from(Error::Memory { gpa: start, source }))?;
    let mut moved = 0u64;
    while moved < len {
        let want = len - moved;
        let fslice = |n: u64| {
            frames
                .subslice(moved as usize, n as usize)
                .map_err(|_| Errno::EFAULT)
        };
        let n = match peer {
            Peer::Kernel {
                bufs,
                seg,
                seg_done,
            } => {
                let Some(&(kbuf, klen)) = bufs.get(*seg) else {
                    // The walk goes no further than the buffers' total.
                    return Err(Errno::EINVAL);
                };
                let n = (klen - *seg_done).min(want);
                let kat = kbuf + *seg_done;
                // Checked against RAM (not the pool): the kernel's own.
                host.ram.check(kat, n)?;
                let kslice = host
                    .mem
                    .get_slice(GuestAddress(kat), n as usize)
                    .map_err(|_| Errno::EFAULT)?;
                let frames = fslice(n)?;
                let (from, to) = match dir {
                    Direction::Read => (frames.ptr_guard(), kslice.ptr_guard_mut()),
                    Direction::Write => (kslice.ptr_guard(), frames.ptr_guard_mut()),
                };
                // SAFETY: both are `n` bytes of guest memory vm-memory
                // mapped for the registry's lifetime (the guards keep them
                // so), and the vCPU is stopped in this hypercall, so
                // nothing else writes them meanwhile. They may overlap (a
                // process writing a file from a shared mapping of that
                // same file): a memmove.
                unsafe { std::ptr::copy(from.as_ptr(), to.as_ptr(), n as usize) };
                *seg_done += n;
                if *seg_done == klen {
                    *seg += 1;
                    *seg_done = 0;
                }
                n
            }
            Peer::Host { buf, at } => {
                let n = ((buf.len() - *at) as u64).min(want);
                if n == 0 {
                    // The walk goes no further than the buffer.
                    return Err(Errno::EINVAL);
                }
                let frames = fslice(n)?;
                let host_bytes = &mut buf[*at..*at + n as usize];
                match dir {
                    Direction::Read => {
                        let from = frames.ptr_guard();
                        // SAFETY: `n` bytes of guest memory mapped for the
                        // registry's lifetime, into a host buffer of its
                        // own (no overlap); the vCPU is stopped.
                        unsafe {
                            std::ptr::copy_nonoverlapping(
                                from.as_ptr(),
                                host_bytes.as_mut_ptr(),
                                n as usize,
                            )
                        };
                    }
                    Direction::Write => {
                        let to = frames.ptr_guard_mut();
                        // SAFETY: as above, the other way.
                        unsafe {
                            std::ptr::copy_nonoverlapping(
                                host_bytes.as_ptr(),
                                to.as_ptr(),
                                n as usize,
                            )
                        };
                    }
                }
                *at += n as usize;
                n
            }
        };
        moved += n;
    }
    Ok(())
}
