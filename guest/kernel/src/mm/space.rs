//! Address spaces: a process's memory as one object — its regions, its
//! break, and the pmap that turns them into translations — reference
//! counted, so that several threads can share one. Destroying the last
//! reference destroys the vmspace.
//!
//! The two ways a vmspace gets its translations are two implementations of
//! [`Pmap`] (gVisor's `platform.AddressSpace` is the same seam):
//! - [`HostPmap`](super::host_pmap::HostPmap) (`pmap=host`, the default):
//!   the host manages the memory; each operation is the vmspace hypercall
//!   of the same name;
//! - [`GuestPmap`](super::guest_pmap::GuestPmap) (`pmap=guest`): this
//!   kernel keeps the page tables in its own RAM and the host follows them
//!   (`MAP_VPAGETABLE`).
//!
//! The regions are kept here, above both: placement, the checks, and what
//! a fault may touch are the same code on both paths. Addresses are page
//! aligned and inside the user range; the system calls check that before
//! calling.

use alloc::boxed::Box;
use alloc::rc::{Rc, Weak};
use alloc::vec::Vec;
use core::cell::RefCell;

use super::regions::{pager_id, Backing, FileMap, Regions};
use vkernel_abi::layout::PAGE_SIZE;
use vkernel_abi::mman::PROT_WRITE;
use vkernel_abi::Errno;

/// What became of a process's page fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Mapped (demand-zero, copy-on-write broken): the process goes on.
    Resolved,
    /// Outside its regions or against their protection: SIGSEGV.
    Segv,
    /// In a file mapping, but past the end of the file (or the file
    /// system is full): SIGBUS.
    Bus,
    /// Allowed, but no page is left to map.
    OutOfMemory,
}

/// One way of giving a vmspace its translations. The caller
/// ([`AddressSpace`]) has updated the regions before each call that
/// changes them, and restores them if the call fails.
pub trait Pmap {
    /// The host vmspace.
    fn vmid(&self) -> u64;
    /// Maps `[start, end)` demand-zero with `prot`, replacing what was
    /// there; `stack`: a `MAP_STACK` mapping (small fault windows).
    fn map_anon(&mut self, start: u64, end: u64, prot: u64, stack: bool) -> Result<(), Errno>;
    /// Makes `[start, end)` ready for a file mapping (its region is in
    /// place): whatever was mapped there goes; the file's pages come on
    /// fault. `before`: the regions as they were (what the pmap maps).
    fn map_file(&mut self, before: &Regions, start: u64, end: u64) -> Result<(), Errno>;
    /// Unmaps `[start, end)`; holes are fine. Every page reference the
    /// range held is dropped (a file page stays alive exactly as long as a
    /// translation may name it). `before`: the regions as they were
    /// before this change (the pmap maps nothing outside them).
    fn unmap(&mut self, before: &Regions, start: u64, end: u64) -> Result<(), Errno>;
    /// Changes the protection of `[start, end)` (covered, no holes) to
    /// `prot`, which `regions` already record.
    fn protect(&mut self, regions: &Regions, start: u64, end: u64, prot: u64) -> Result<(), Errno>;
    /// Discards the pages of `[start, end)`: they read as zero again.
    fn discard(&mut self, start: u64, end: u64) -> Result<(), Errno>;
    /// Brings the pages of `[start, end)` in ahead of use (a hint);
    /// `write`: they are about to be written (a private file mapping's
    /// pages come as private copies).
    fn prefault(
        &mut self,
        regions: &Regions,
        start: u64,
        end: u64,
        write: bool,
    ) -> Result<(), Errno>;
    /// A page fault at `addr` with x86 error code `error_code`.
    fn fault(&mut self, regions: &Regions, addr: u64, error_code: u64) -> Fault;
    /// Copies process memory at `addr` into `buf`; the bytes copied (short
    /// at the first page the process cannot have).
    fn read(&mut self, regions: &Regions, addr: u64, buf: &mut [u8]) -> usize;
    /// Copies `buf` into process memory at `addr`; the bytes copied.
    fn write(&mut self, regions: &Regions, addr: u64, buf: &[u8]) -> usize;
    /// The posted call that was to make this vmspace failed: it does not
    /// exist, so dropping this pmap destroys nothing.
    fn unmade(&mut self) {}
    /// Sends the calls a pmap made with its creation held back
    /// ([`super::Mm::new_space`]) have held back so far: `Err`
    /// at the first that failed (the space is then to be dropped, which
    /// undoes the rest). Nothing to do for a pmap that holds none back.
    fn send_deferred(&mut self) -> Result<(), Errno> {
        Ok(())
    }
    /// Posts the write of `buf` at `addr` to go with the next RUN
    /// (`guestlib::batch`) where it costs an exit of its own and cannot
    /// fail but for the host's want of a page (reported under `tag`).
    /// `false`: nothing posted, write it at once.
    fn post_write(&mut self, _regions: &Regions, _addr: u64, _buf: &[u8], _tag: u64) -> bool {
        false
    }
    /// Copies process memory from `addr` on into the buffers `bufs` in
    /// turn (a scatter list); the bytes copied, short as [`Pmap::read`].
    fn read_v(&mut self, regions: &Regions, addr: u64, bufs: &mut [&mut [u8]]) -> usize {
        let mut done = 0;
        for b in bufs.iter_mut() {
            let n = self.read(regions, addr + done as u64, b);
            done += n;
            if n < b.len() {
                break;
            }
        }
        done
    }
    /// Copies the buffers `bufs` in turn into process memory from `addr`
    /// on (a gather list); the bytes copied.
    fn write_v(&mut self, regions: &Regions, addr: u64, bufs: &[&[u8]]) -> usize {
        let mut done = 0;
        for b in bufs {
            let n = self.write(regions, addr + done as u64, b);
            done += n;
            if n < b.len() {
                break;
            }
        }
        done
    }
    /// A copy of this address space in new vmspace `child` (eager copy by
    /// the host, or copy-on-write by the guest pmap).
    /// `stack_va`: the parent's stack pointer, whose page both sides
    /// write at once (the guest pmap copies it now rather than on a
    /// fault).
    /// `regions`: the space's, which the child's copy also gets.
    fn fork(
        &mut self,
        regions: &Regions,
        child: u64,
        stack_va: u64,
    ) -> Result<Box<dyn Pmap>, Errno>;
    /// Whether the host alone can copy `[addr, addr + len)` to or from
    /// another vmspace (`vmspace_copy`): it has every page the range may
    /// hold. The guest pmap copies through the kernel's own tables, with
    /// no exit to save.
    fn host_copyable(&self, _regions: &Regions, _addr: u64, _len: usize) -> bool {
        false
    }
}

/// A shared address space.
pub type SpaceRef = Rc<RefCell<AddressSpace>>;

/// The address spaces mapping one file (Linux's `i_mmap`), so that
/// truncating it can take the pages past the new end out of every mapping.
/// Spaces that are gone, or no longer map the file, cost a stale entry
/// until the next [`Mappers::add`].
#[derive(Default)]
pub struct Mappers(RefCell<Vec<Weak<RefCell<AddressSpace>>>>);

impl Mappers {
    /// Records that `space` maps the file (`ENOMEM` if the kernel heap
    /// cannot hold the record).
    fn add(&self, space: &Weak<RefCell<AddressSpace>>) -> Result<(), Errno> {
        let mut list = self.0.borrow_mut();
        list.retain(|w| w.strong_count() > 0);
        if list.iter().any(|w| w.ptr_eq(space)) {
            return Ok(());
        }
        list.try_reserve(1).map_err(|_| Errno::ENOMEM)?;
        list.push(space.clone());
        Ok(())
    }

    /// Takes file pages `from..` of `object` out of every mapping of it
    /// (Linux's `unmap_mapping_range`, private copies included): a later
    /// touch faults, and past the end of the file that is SIGBUS.
    pub fn zap(&self, object: *const (), from: u64) {
        let list: Vec<_> = self.0.borrow().iter().filter_map(Weak::upgrade).collect();
        for space in list {
            // No system call that truncates holds an address space
            // borrowed; if one ever did, the pages would still be safe
            // (every translation holds a reference on its page), only
            // still visible to that space.
            if let Ok(mut space) = space.try_borrow_mut() {
                space.zap(object, from);
            }
        }
    }
}

/// A process's memory.
pub struct AddressSpace {
    /// Itself, for the files it maps ([`Mappers`]).
    me: Weak<RefCell<AddressSpace>>,
    regions: Regions,
    pmap: Box<dyn Pmap>,
    /// Program break: `brk_start` is the end of the loaded image.
    pub brk_start: u64,
    pub brk: u64,
    /// Lowest address the mmap area may reach (above the break's room).
    pub mmap_floor: u64,
    /// What keeps the program's file from being written while this image
    /// (or a fork of it) runs (`fs::textbusy`), set by exec.
    pub program_hold: Option<Rc<dyn core::any::Any>>,
}

impl AddressSpace {
    /// An empty address space over `pmap`.
    pub fn new(pmap: Box<dyn Pmap>) -> SpaceRef {
        Rc::new_cyclic(|me| {
            RefCell::new(AddressSpace {
                me: me.clone(),
                regions: Regions::default(),
                pmap,
                brk_start: 0,
                brk: 0,
                mmap_floor: 0,
                program_hold: None,
            })
        })
    }

    /// The host vmspace holding it.
    pub fn vmid(&self) -> u64 {
        self.pmap.vmid()
    }

    /// The mapped regions, in address order (`/proc/PID/maps`).
    pub fn regions(&self) -> &[super::regions::Region] {
        self.regions.as_slice()
    }

    /// Whether another address space may see a store into this one: it
    /// has a writable `MAP_SHARED` region.
    pub fn shares_writes(&self) -> bool {
        self.regions
            .as_slice()
            .iter()
            .any(|r| r.prot & PROT_WRITE != 0 && r.file().is_some_and(|f| f.shared))
    }

    /// Whether `[addr, addr + len)` is mapped with no hole.
    pub fn covers(&self, addr: u64, len: u64) -> bool {
        self.regions.covers(addr, addr + len)
    }

    /// Whether nothing is mapped in `[addr, addr + len)`.
    pub fn is_free(&self, addr: u64, len: u64) -> bool {
        self.regions.is_free(addr, addr + len)
    }

    /// Whether all of `[addr, addr + len)` is mapped with at least `prot`
    /// (what a signal frame needs of the stack it is written on).
    pub fn allows(&self, addr: u64, len: u64, prot: u64) -> bool {
        let end = addr.saturating_add(len);
        let mut at = addr;
        for r in self.regions.as_slice() {
            // Done: a region past the range (a guard page above a thread's
            // stack, say) does not matter.
            if at >= end {
                break;
            }
            if r.start <= at && at < r.end {
                if r.prot & prot != prot {
                    return false;
                }
                at = r.end;
            }
        }
        at >= end
    }

    /// The highest free `len` bytes inside `[floor, top)`.
    pub fn find_free(&self, top: u64, floor: u64, len: u64) -> Option<u64> {
        self.regions.find_free_below(top, floor, len)
    }

    /// Runs `change` on the regions, then `apply` on the pmap with the
    /// regions after and before the change; if either fails, the regions
    /// are as before (the pmap and the regions must always agree).
    fn change(
        &mut self,
        change: impl FnOnce(&mut Regions) -> Result<(), Errno>,
        apply: impl FnOnce(&mut dyn Pmap, &Regions, &Regions) -> Result<(), Errno>,
    ) -> Result<(), Errno> {
        let saved = self.regions.try_clone()?;
        let r = change(&mut self.regions)
            .and_then(|()| apply(self.pmap.as_mut(), &self.regions, &saved));
        if r.is_err() {
            self.regions = saved;
        }
        r
    }

    /// Maps `[addr, addr + len)` demand-zero with `prot`, replacing
    /// whatever was mapped there.
    pub fn map_anon(&mut self, addr: u64, len: u64, prot: u64) -> Result<(), Errno> {
        self.map_anon_as(addr, len, prot, false)
    }

    /// [`AddressSpace::map_anon`], as a stack if `stack` (`MAP_STACK`:
    /// see [`Backing::Anon`]).
    pub fn map_anon_as(
        &mut self,
        addr: u64,
        len: u64,
        prot: u64,
        stack: bool,
    ) -> Result<(), Errno> {
        let end = addr + len;
        self.change(
            |r| r.insert(addr, end, prot, Backing::Anon { stack }),
            |p, _, _| p.map_anon(addr, end, prot, stack),
        )
    }

    /// Maps `[addr, addr + len)` onto `file` with `prot`, replacing
    /// whatever was mapped there; the file's pages come on first touch.
    pub fn map_file(&mut self, addr: u64, len: u64, prot: u64, file: FileMap) -> Result<(), Errno> {
        let end = addr + len;
        let object = file.object.clone();
        object.mappers().add(&self.me)?;
        // The pmap takes away only what it maps under the regions as they
        // were: over a free range, nothing (no hypercall on either pmap).
        self.change(
            |r| r.insert(addr, end, prot, Backing::File(file)),
            |p, _, before| p.map_file(before, addr, end),
        )
    }

    /// Unmaps `[addr, addr + len)`; holes are fine (Linux's munmap).
    pub fn unmap(&mut self, addr: u64, len: u64) -> Result<(), Errno> {
        let end = addr + len;
        self.change(
            |r| r.remove(addr, end),
            |p, _, before| p.unmap(before, addr, end),
        )
    }

    /// Changes the protection of `[addr, addr + len)`: `ENOMEM` on a hole,
    /// `EACCES` for write access to a shared mapping of a file not open for
    /// writing.
    pub fn protect(&mut self, addr: u64, len: u64, prot: u64) -> Result<(), Errno> {
        use vkernel_abi::mman::PROT_WRITE;
        let end = addr + len;
        if !self.regions.covers(addr, end) {
            return Err(Errno::ENOMEM);
        }
        if prot & PROT_WRITE != 0
            && self
                .regions
                .pieces(addr, end)
                .any(|r| r.file().is_some_and(|f| f.shared && !f.may_write))
        {
            return Err(Errno::EACCES);
        }
        self.change(
            |r| r.protect(addr, end, prot),
            |p, regions, _| p.protect(regions, addr, end, prot),
        )
    }

    /// mremap's move: the pages of `[old, old + len)`, which lie in one
    /// region, go to the free range `[new, new + new_len)` (`new_len` at
    /// least `len`: the rest continues the region), which takes the
    /// region's protection and backing (a file's mapping at the pages
    /// that follow). A shared file's pages are the file's: the new range
    /// maps them. Private memory is copied (anonymous chunks of zeros are
    /// skipped: the new range reads zero already). The old range is
    /// unmapped; with `keep_old` (MREMAP_DONTUNMAP) it stays mapped and
    /// its private pages are discarded, as Linux leaves it. On failure
    /// the new range is unmapped again and the old one is untouched.
    pub fn remap(
        &mut self,
        old: u64,
        len: u64,
        new: u64,
        new_len: u64,
        keep_old: bool,
    ) -> Result<(), Errno> {
        use vkernel_abi::mman::{PROT_READ, PROT_WRITE};
        let r = self.regions.region_of(old).cloned().ok_or(Errno::EFAULT)?;
        let prot = r.prot;
        let (anon, shared) = match &r.backing {
            Backing::Anon { .. } => (true, false),
            Backing::File(f) => (false, f.shared),
        };
        // Writable while the copy goes in; readable while it comes out.
        let copy_prot = if shared {
            prot
        } else {
            prot | PROT_READ | PROT_WRITE
        };
        match r.backing {
            Backing::Anon { stack } => self.map_anon_as(new, new_len, copy_prot, stack)?,
            Backing::File(mut f) => {
                f.pgoff += (old - r.start) / PAGE_SIZE;
                self.map_file(new, new_len, copy_prot, f)?
            }
        }
        let moved = if shared {
            Ok(())
        } else {
            self.copy_within(old, new, len, anon, prot & PROT_READ == 0)
                .and_then(|()| {
                    if copy_prot != prot {
                        self.protect(new, new_len, prot)
                    } else {
                        Ok(())
                    }
                })
        };
        if let Err(e) = moved {
            let _ = self.unmap(new, new_len);
            return Err(e);
        }
        if !keep_old {
            self.unmap(old, len)
        } else if !shared {
            self.discard(old, len)
        } else {
            Ok(())
        }
    }

    /// Copies `len` bytes from `src` to `dst` of this space (disjoint):
    /// in one host call per MiB where the pmap lets the host copy alone,
    /// else through a kernel buffer. `src_unreadable`: the source is
    /// `PROT_NONE`, made readable for the copy and put back.
    fn copy_within(
        &mut self,
        src: u64,
        dst: u64,
        len: u64,
        anon: bool,
        src_unreadable: bool,
    ) -> Result<(), Errno> {
        use vkernel_abi::mman::PROT_READ;
        let old_prot = self.regions.region_of(src).map_or(0, |r| r.prot);
        if src_unreadable {
            self.protect(src, len, old_prot | PROT_READ)?;
        }
        let r = self.copy_chunks(src, dst, len, anon);
        if src_unreadable {
            let _ = self.protect(src, len, old_prot);
        }
        r
    }

    fn copy_chunks(&mut self, src: u64, dst: u64, len: u64, anon: bool) -> Result<(), Errno> {
        const HOST_CHUNK: u64 = vkernel_abi::VMSPACE_COPY_MAX;
        let host = self.pmap.host_copyable(&self.regions, src, len as usize)
            && self.pmap.host_copyable(&self.regions, dst, len as usize);
        let mut buf = Vec::new();
        let mut done = 0;
        while done < len {
            if host {
                let n = (len - done).min(HOST_CHUNK);
                let vmid = self.pmap.vmid();
                let got = guestlib::vmspace::copy(vmid, dst + done, vmid, src + done, n)?;
                if got as u64 != n {
                    return Err(Errno::ENOMEM);
                }
                done += n;
                continue;
            }
            // 64 KiB at a time through the kernel heap.
            let n = (len - done).min(16 * PAGE_SIZE) as usize;
            if buf.len() < n {
                buf.try_reserve_exact(n - buf.len())
                    .map_err(|_| Errno::ENOMEM)?;
                buf.resize(n, 0);
            }
            let chunk = &mut buf[..n];
            if self.pmap.read(&self.regions, src + done, chunk) != n {
                return Err(Errno::ENOMEM);
            }
            let zeros = anon && chunk.iter().all(|&b| b == 0);
            if !zeros && self.pmap.write(&self.regions, dst + done, chunk) != n {
                return Err(Errno::ENOMEM);
            }
            done += n as u64;
        }
        Ok(())
    }

    /// Takes file pages `from..` of `object` out of this space's mappings
    /// of it (see [`Mappers::zap`]); the regions stay.
    fn zap(&mut self, object: *const (), from: u64) {
        let ranges: Vec<(u64, u64)> = self
            .regions
            .as_slice()
            .iter()
            .filter_map(|r| {
                let f = r.file().filter(|f| pager_id(&f.object) == object)?;
                let pages = (r.end - r.start) / PAGE_SIZE;
                let first = from.max(f.pgoff);
                (first < f.pgoff + pages).then(|| (r.start + (first - f.pgoff) * PAGE_SIZE, r.end))
            })
            .collect();
        for (start, end) in ranges {
            // Unmapping a range the space maps cannot fail on either pmap
            // short of a broken host; the references the pmap holds keep
            // the pages from reuse even then.
            let _ = self.pmap.unmap(&self.regions, start, end);
        }
    }

    /// Discards the pages of `[addr, addr + len)`: they read as zero again.
    pub fn discard(&mut self, addr: u64, len: u64) -> Result<(), Errno> {
        // The mapped runs of the range: the pmap's discard takes no holes.
        let mut runs: Vec<(u64, u64)> = Vec::new();
        for r in self.regions.pieces(addr, addr + len) {
            match runs.last_mut() {
                Some(last) if last.1 == r.start => last.1 = r.end,
                _ => runs
                    .try_reserve(1)
                    .map(|_| runs.push((r.start, r.end)))
                    .map_err(|_| Errno::ENOMEM)?,
            }
        }
        for (start, end) in runs {
            self.pmap.discard(start, end)?;
        }
        Ok(())
    }

    /// Brings the pages of `[addr, addr + len)` in ahead of use (a
    /// hint); `write`: they are about to be written.
    pub fn prefault(&mut self, addr: u64, len: u64, write: bool) -> Result<(), Errno> {
        self.pmap.prefault(&self.regions, addr, addr + len, write)
    }

    /// A page fault of the process: resolved (demand paging,
    /// copy-on-write), the process's own (SIGSEGV), or out of memory.
    pub fn fault(&mut self, addr: u64, error_code: u64) -> Fault {
        self.pmap.fault(&self.regions, addr, error_code)
    }

    /// Copies process memory at `addr` into `buf`; the bytes copied.
    pub fn read(&mut self, addr: u64, buf: &mut [u8]) -> usize {
        self.pmap.read(&self.regions, addr, buf)
    }

    /// Copies `buf` into process memory at `addr`; the bytes copied.
    pub fn write(&mut self, addr: u64, buf: &[u8]) -> usize {
        self.pmap.write(&self.regions, addr, buf)
    }

    /// [`Pmap::unmade`].
    pub fn unmade(&mut self) {
        self.pmap.unmade()
    }

    /// [`Pmap::send_deferred`].
    pub fn send_deferred(&mut self) -> Result<(), Errno> {
        self.pmap.send_deferred()
    }

    /// [`Pmap::post_write`]: `true` if the write was posted.
    pub fn post_write(&mut self, addr: u64, buf: &[u8], tag: u64) -> bool {
        self.pmap.post_write(&self.regions, addr, buf, tag)
    }

    /// Copies process memory from `addr` on into `bufs` in turn; the
    /// bytes copied.
    pub fn read_v(&mut self, addr: u64, bufs: &mut [&mut [u8]]) -> usize {
        self.pmap.read_v(&self.regions, addr, bufs)
    }

    /// Copies `bufs` in turn into process memory from `addr` on; the
    /// bytes copied.
    pub fn write_v(&mut self, addr: u64, bufs: &[&[u8]]) -> usize {
        self.pmap.write_v(&self.regions, addr, bufs)
    }

    /// Copies `len` bytes of `src`'s memory at `src_addr` to `addr` of this
    /// space in one host call (`vmspace_copy`: a pipe's writer handing its
    /// bytes to a reader waiting in `read`), when both pmaps let the host
    /// do it alone; `None` when they do not (copy through the kernel).
    /// The bytes copied, short at the first page either side lacks.
    pub fn copy_from(
        &mut self,
        addr: u64,
        src: &AddressSpace,
        src_addr: u64,
        len: usize,
    ) -> Option<usize> {
        if !self.pmap.host_copyable(&self.regions, addr, len)
            || !src.pmap.host_copyable(&src.regions, src_addr, len)
        {
            return None;
        }
        let (dst, src) = (self.pmap.vmid(), src.pmap.vmid());
        let r = guestlib::vmspace::copy(dst, addr, src, src_addr, len as u64);
        Some(r.map_or(0, |n| n as usize))
    }

    /// [`AddressSpace::copy_from`] of a whole `len` bytes, posted to go
    /// with the next RUN (`guestlib::batch`, under `tag`) rather than made
    /// now: only where the host is sure to copy all of it unless it has no
    /// page to give, that is, under `pmap=host` with each range inside
    /// one anonymous region (the destination's writable, the source's
    /// readable; neither can change before the RUN the copy goes with,
    /// and every other hypercall sends the posted ones first). `false`:
    /// nothing posted.
    pub fn post_copy_from(
        &mut self,
        addr: u64,
        src: &AddressSpace,
        src_addr: u64,
        len: usize,
        tag: u64,
    ) -> bool {
        use vkernel_abi::mman::{PROT_READ, PROT_WRITE};
        if len == 0
            || len as u64 > vkernel_abi::VMSPACE_COPY_MAX
            || !self.host_held(addr, len, PROT_WRITE)
            || !src.host_held(src_addr, len, PROT_READ)
        {
            return false;
        }
        let call = vkernel_abi::Call::VmspaceCopy {
            dst: self.pmap.vmid(),
            dst_addr: addr,
            src: src.pmap.vmid(),
            src_addr,
            len: len as u64,
        };
        guestlib::batch::post(call, len as i64, tag)
    }

    /// Whether `len` bytes at `addr` are mapped with `prot`, with no
    /// hole, in pages the host holds itself under `pmap=host` (anonymous
    /// memory, private copies of file pages): the host alone copies them,
    /// and a copy cannot fail but for the host's want of a page.
    fn host_held(&self, addr: u64, len: usize, prot: u64) -> bool {
        self.pmap.host_copyable(&self.regions, addr, len)
            && addr.checked_add(len as u64).is_some_and(|end| {
                self.regions.covers(addr, end)
                    && self.regions.pieces(addr, end).all(|r| r.prot & prot != 0)
            })
    }

    /// Posts a `vmspace_pwrite` of kernel memory `buf` (not copied: the
    /// caller keeps it as it is until the next hypercall) to `addr`, to go
    /// with the next RUN, where [`AddressSpace::host_held`] holds (the
    /// destination writable); `tag` says whose call fails if the host
    /// cannot back a page. `false`: nothing posted.
    pub fn post_write_ref(&mut self, addr: u64, buf: &[u8], tag: u64) -> bool {
        if buf.is_empty() || !self.host_held(addr, buf.len(), vkernel_abi::mman::PROT_WRITE) {
            return false;
        }
        let call = vkernel_abi::Call::VmspacePwrite {
            id: self.pmap.vmid(),
            buf: buf.as_ptr() as u64,
            len: buf.len() as u64,
            flags: 0,
            off: addr,
        };
        guestlib::batch::post(call, buf.len() as i64, tag)
    }

    /// A copy of this address space (fork), in new vmspace `child`:
    /// private memory is copied (or copy-on-write), shared file mappings
    /// stay shared.
    pub fn fork(&mut self, child: u64, stack_va: u64) -> Result<SpaceRef, Errno> {
        let regions = self.regions.try_clone()?;
        let pmap = self.pmap.fork(&self.regions, child, stack_va)?;
        let space = Rc::new_cyclic(|me| {
            RefCell::new(AddressSpace {
                me: me.clone(),
                regions,
                pmap,
                brk_start: self.brk_start,
                brk: self.brk,
                mmap_floor: self.mmap_floor,
                program_hold: self.program_hold.clone(),
            })
        });
        let me = Rc::downgrade(&space);
        for r in space.borrow().regions.as_slice() {
            if let Some(f) = r.file() {
                f.object.mappers().add(&me)?;
            }
        }
        Ok(space)
    }
}
