//! `pmap=host` (the default): the host keeps the process's translations.
//! Every operation is the vmspace hypercall of the same name: anonymous
//! mappings, `vmspace_clone` for fork, pread/pwrite for copies, and
//! preadv/pwritev for a list of kernel pieces (a file's pages, a pipe's
//! ring halves): one exit per up to [`VMSPACE_IOV_MAX`] pieces.
//!
//! File mappings: the host resolves faults only in the entries it has, and
//! a file region gets none at mmap time, so its first touch comes back
//! here as a page fault. The fault maps the file's own page(s) into the
//! vmspace as physical-memory entries (`PHYSMEM_FD`): `MAP_SHARED` ones
//! (the host maps the kernel's page itself) for a shared mapping, and for
//! a private mapping read-only until the first write, which replaces the
//! page by a `MAP_PRIVATE` entry (the host copies the kernel's page into a
//! page of its pool on first touch). Pages around the fault that the file
//! already has come in the same call when they are physically contiguous.
//! Both are mapped with `MAP_POPULATE`, so the process's retry of the
//! access does not fault again, to the host.
//!
//! Every file page mapped into the vmspace holds a reference on it
//! ([`Slot`]) until it is unmapped, so a page the host may still map is
//! never freed and reused, whatever becomes of the file.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use super::physmem::Frames;
use super::regions::{FileMap, PageError, Region, Regions};
use super::space::{Fault, Pmap};
use crate::proc::posted::Tag;
use guestlib::vmspace as vms;
use vkernel_abi::layout::{PAGE_SIZE, VM_MIN_USER_ADDRESS};
use vkernel_abi::mman::*;
use vkernel_abi::paging::pf;
use vkernel_abi::{BatchEntry, Call, Errno, KernelIovec, BATCH_EXPECT_ANY, VMSPACE_IOV_MAX};

/// Pages a file fault maps at most (an aligned window around it): 256
/// KiB, four times Linux's `fault_around_bytes`, because a fault costs
/// two exits here, not a microsecond (a dynamic `/bin/true` took 30
/// faults with 16 pages, 27 with 64; `python3 -c pass` 82 and 65).
const FILE_FAULT_AROUND: u64 = 64;

/// A file page mapped into the vmspace.
#[derive(Clone, Copy, Debug)]
struct Slot {
    /// The file's page (a reference held).
    page: u64,
    /// Mapped `MAP_PRIVATE`: the host's copy of it, once touched. Else
    /// the file's page itself (read-only in a private region).
    private: bool,
}

/// Most bytes a held-back write copies to carry with it; a larger write
/// goes to the host at once (with what is held back), from the caller's
/// buffers, which may not outlive the call.
const DEFER_COPY_MAX: usize = 128 << 10;

/// Most pages of one written range the batch maps ahead.
const PREFAULT_MAX_PAGES: u64 = 64;

/// The calls that load a fresh address space (exec), held back to go to
/// the host together ([`HostPmap::send_deferred`]): one exit for the
/// whole image where each call was one (about twenty for a small static
/// program).
#[derive(Default)]
struct Deferred {
    entries: Vec<BatchEntry>,
    /// The bytes the held-back writes carry, each its own allocation (the
    /// entries point into them).
    bytes: Vec<Vec<u8>>,
    /// The iovec arrays of writes sent at once, kept until they are sent.
    iovs: Vec<Vec<KernelIovec>>,
    /// The page ranges written, and the ones asked for ahead
    /// ([`Pmap::prefault`]): mapped ahead at the end of the batch, where
    /// a failure (no page for a hint) fails nothing else.
    written: Vec<(u64, u64)>,
    /// Whether the vmspace's creation went to the host already.
    created: bool,
}

/// A vmspace whose memory the host manages.
pub struct HostPmap {
    vmid: u64,
    frames: Frames,
    /// The file pages mapped, by address.
    file: BTreeMap<u64, Slot>,
    /// The iovec array of the last preadv/pwritev, kept to be reused.
    iov: Vec<KernelIovec>,
    /// The host has (or will have, once posted calls are sent) the
    /// vmspace: false after a posted clone that made it failed.
    made: bool,
    /// Calls held back while exec loads the space (`None`: each call
    /// goes at once).
    deferred: Option<Deferred>,
}

impl HostPmap {
    /// Moves the pieces `(address, length)` (kernel memory, identity
    /// mapped) to or from process memory at `addr` with as few
    /// preadv/pwritev hypercalls as [`VMSPACE_IOV_MAX`] allows; the bytes
    /// moved, short at the first page the process does not have.
    fn copy_v(
        &mut self,
        addr: u64,
        count: usize,
        pieces: impl Iterator<Item = (u64, usize)>,
        read: bool,
    ) -> usize {
        let batch = count.min(VMSPACE_IOV_MAX as usize);
        self.iov.clear();
        // One piece is one pread/pwrite; without heap for the array, a
        // hypercall per piece.
        if count <= 1 || self.iov.try_reserve(batch).is_err() {
            return self.copy_each(addr, pieces, read);
        }
        let mut done = 0usize;
        let mut pieces = pieces.filter(|&(_, len)| len > 0).peekable();
        while pieces.peek().is_some() {
            self.iov.clear();
            let mut want = 0usize;
            for (base, len) in pieces.by_ref().take(batch) {
                self.iov.push(KernelIovec {
                    base,
                    len: len as u64,
                });
                want += len;
            }
            let at = addr + done as u64;
            let r = if read {
                vms::preadv(self.vmid, &self.iov, at)
            } else {
                vms::pwritev(self.vmid, &self.iov, at)
            };
            let n = r.map_or(0, |n| n as usize);
            done += n;
            if n < want {
                break;
            }
        }
        done
    }

    /// Whether `[addr, addr + len)` overlaps a file mapping (whose pages
    /// the host may not have: [`HostPmap::copy`] handles them).
    /// A private copy of a file page is the host's own page, not the
    /// file's: a range whose file pages are all such copies is not.
    fn touches_file(&self, regions: &Regions, addr: u64, len: usize) -> bool {
        let end = addr.saturating_add(len as u64);
        regions.pieces(addr, end).any(|r| {
            r.file().is_some() && {
                let mut va = r.start & !(PAGE_SIZE - 1);
                while va < r.end && self.file.get(&va).is_some_and(|s| s.private) {
                    va += PAGE_SIZE;
                }
                va < r.end
            }
        })
    }

    /// Copies the pieces one after another with [`HostPmap::copy`]; the
    /// bytes copied, short where a piece was.
    fn each_piece(
        &mut self,
        regions: &Regions,
        addr: u64,
        pieces: impl Iterator<Item = (*mut u8, usize)>,
        to_process: bool,
    ) -> usize {
        let mut done = 0usize;
        for (buf, len) in pieces {
            let n = self.copy(regions, addr + done as u64, buf, len, to_process);
            done += n;
            if n < len {
                break;
            }
        }
        done
    }

    /// [`HostPmap::copy_v`] one pread/pwrite per piece.
    fn copy_each(
        &self,
        addr: u64,
        pieces: impl Iterator<Item = (u64, usize)>,
        read: bool,
    ) -> usize {
        let mut done = 0usize;
        for (base, len) in pieces.filter(|&(_, len)| len > 0) {
            let at = addr + done as u64;
            let r = if read {
                vms::pread_raw(self.vmid, base, len as u64, 0, at)
            } else {
                vms::pwrite_raw(self.vmid, base, len as u64, 0, at)
            };
            let n = r.map_or(0, |n| n as usize);
            done += n;
            if n < len {
                break;
            }
        }
        done
    }
}

impl HostPmap {
    /// The vmspace `vmid`, its creation and every call after it held
    /// back until [`Pmap::send_deferred`] (exec: the new image is loaded
    /// with one exit). Nothing reaches the host before then, so dropping
    /// it unsent destroys nothing.
    pub fn create(vmid: u64, frames: Frames) -> Box<dyn Pmap> {
        let mut d = Deferred::default();
        d.entries.push(BatchEntry::new(
            Call::VmspaceCreate {
                id: vmid,
                ty: 0,
                data: 0,
            },
            BATCH_EXPECT_ANY,
        ));
        Box::new(HostPmap {
            vmid,
            frames,
            file: BTreeMap::new(),
            iov: Vec::new(),
            made: true,
            deferred: Some(d),
        })
    }

    /// Holds `call` back (expecting `expect`) if calls are being held
    /// back; `false` if not (make it at once).
    fn hold(&mut self, call: Call, expect: i64) -> bool {
        let Some(d) = self.deferred.as_mut() else {
            return false;
        };
        if d.entries.try_reserve(1).is_err() {
            return false;
        }
        d.entries.push(BatchEntry::new(call, expect));
        true
    }

    /// Sets the protection of `[start, end)` in the host: held back
    /// while exec loads the space, else at once.
    fn mprotect(&mut self, start: u64, end: u64, prot: u64) -> Result<(), Errno> {
        let call = Call::VmspaceMprotect {
            id: self.vmid,
            addr: start,
            len: end - start,
            prot,
        };
        if !self.hold(call, 0) {
            self.undefer()?;
            vms::mprotect(self.vmid, start, end - start, prot)?;
        }
        Ok(())
    }

    /// Sends what is held back and goes on with each call at once (before
    /// any call that cannot be held back, so calls stay in order).
    fn undefer(&mut self) -> Result<(), Errno> {
        match self.deferred.take() {
            Some(d) => self.send(d, false),
            None => Ok(()),
        }
    }

    /// Sends the held-back calls of `d` (and, when `last`, maps the pages
    /// written ahead: the process touches its entry point, stack and data
    /// at once, each a fault to the host otherwise). On an unmet entry
    /// the space is to be dropped: if its creation was the one, there is
    /// nothing to destroy.
    fn send(&mut self, mut d: Deferred, last: bool) -> Result<(), Errno> {
        // The entries from here on are hints: the batch stops at one that
        // fails, but everything before it was done.
        let hints_from = d.entries.len();
        if last {
            let mut ranges = core::mem::take(&mut d.written);
            ranges.sort_unstable();
            let mut merged: Vec<(u64, u64)> = Vec::new();
            for (s, e) in ranges {
                match merged.last_mut() {
                    Some(m) if s <= m.1 => m.1 = m.1.max(e),
                    _ => merged.push((s, e)),
                }
            }
            for (s, e) in merged {
                let e = e.min(s + PREFAULT_MAX_PAGES * PAGE_SIZE);
                let call = Call::VmspaceMcontrol {
                    id: self.vmid,
                    addr: s,
                    len: e - s,
                    behav: MADV_WILLNEED,
                    value: 0,
                };
                if d.entries.try_reserve(1).is_err() {
                    break;
                }
                d.entries.push(BatchEntry::new(call, BATCH_EXPECT_ANY));
            }
        }
        let first = if d.created { None } else { Some(0) };
        match guestlib::batch::send(&mut d.entries) {
            Ok(()) => Ok(()),
            Err(u) if u.index >= hints_from => Ok(()),
            Err(u) => {
                if Some(u.index) == first {
                    self.made = false;
                }
                Err(if u.errno > 0 {
                    Errno(u.errno as i32)
                } else {
                    Errno::ENOMEM
                })
            }
        }
    }

    /// Holds back a write of the pieces `bufs` at `addr`, inside one
    /// anonymous or private file region (whose pages get their private
    /// copies first); `None` if calls are not being held back, or the
    /// write is not of that kind (write it the usual way, after
    /// [`HostPmap::undefer`]). Small writes are copied and held; a larger
    /// one goes at once with the calls held so far.
    fn hold_write(&mut self, regions: &Regions, addr: u64, bufs: &[&[u8]]) -> Option<usize> {
        self.deferred.as_ref()?;
        let len: usize = bufs.iter().map(|b| b.len()).sum();
        let end = addr.checked_add(len as u64)?;
        let r = regions.region_of(addr).filter(|r| end <= r.end)?;
        if len == 0 {
            return None;
        }
        match r.file() {
            None => {}
            Some(f) if !f.shared => {
                let mut va = addr & !(PAGE_SIZE - 1);
                while va < end {
                    self.make_private(va, r, f).ok()?;
                    va += PAGE_SIZE;
                }
            }
            Some(_) => return None,
        }
        let d = self.deferred.as_mut()?;
        d.written.try_reserve(1).ok()?;
        d.entries.try_reserve(1 + bufs.len()).ok()?;
        let pages = (addr & !(PAGE_SIZE - 1), end.next_multiple_of(PAGE_SIZE));
        if len <= DEFER_COPY_MAX {
            let mut copy: Vec<u8> = Vec::new();
            copy.try_reserve_exact(len).ok()?;
            d.bytes.try_reserve(1).ok()?;
            for b in bufs {
                copy.extend_from_slice(b);
            }
            d.entries.push(BatchEntry::new(
                Call::VmspacePwrite {
                    id: self.vmid,
                    buf: copy.as_ptr() as u64,
                    len: len as u64,
                    flags: 0,
                    off: addr,
                },
                len as i64,
            ));
            d.bytes.push(copy);
            d.written.push(pages);
            return Some(len);
        }
        // Too large to copy: the caller's pieces, sent now.
        let mut at = addr;
        for group in bufs.chunks(VMSPACE_IOV_MAX as usize) {
            let mut iov: Vec<KernelIovec> = Vec::new();
            iov.try_reserve_exact(group.len()).ok()?;
            d.iovs.try_reserve(1).ok()?;
            let mut n = 0u64;
            for b in group {
                iov.push(KernelIovec {
                    base: b.as_ptr() as u64,
                    len: b.len() as u64,
                });
                n += b.len() as u64;
            }
            d.entries.push(BatchEntry::new(
                Call::VmspacePwritev {
                    id: self.vmid,
                    iov: iov.as_ptr() as u64,
                    iovcnt: iov.len() as u64,
                    flags: 0,
                    off: at,
                },
                n as i64,
            ));
            d.iovs.push(iov);
            at += n;
        }
        d.written.push(pages);
        // The rest of the batch goes on holding back: move what was sent
        // out, keep the written ranges for the end.
        let mut sent = core::mem::take(d);
        d.written = core::mem::take(&mut sent.written);
        d.created = true;
        match self.send(sent, false) {
            Ok(()) => Some(len),
            Err(_) => Some(0),
        }
    }

    /// The runs of `[start, end)` the host has map entries for, in
    /// address order, neighbours merged: all of an anonymous region
    /// (mapped whole at mmap), and a file region's pages mapped so far
    /// (`self.file`). `before`: the regions the entries were made for.
    fn host_runs(&self, before: &Regions, start: u64, end: u64) -> Vec<(u64, u64)> {
        let mut runs: Vec<(u64, u64)> = Vec::new();
        let mut add = |s: u64, e: u64| match runs.last_mut() {
            Some(last) if last.1 == s => last.1 = e,
            _ => runs.push((s, e)),
        };
        for r in before.pieces(start, end) {
            if r.file().is_none() {
                add(r.start, r.end);
            } else {
                for &va in self.file.range(r.start..r.end).map(|(va, _)| va) {
                    add(va, va + PAGE_SIZE);
                }
            }
        }
        runs
    }

    /// Unmaps `[start, end)` in vmspace `vmid`, holes or not: the seed's
    /// munmap refuses holes, so a range with some is first filled with
    /// one mapping (replacing what is there), then unmapped whole.
    fn unmap_span(vmid: u64, start: u64, end: u64) -> Result<(), Errno> {
        let len = end - start;
        match vms::munmap(vmid, start, len) {
            Err(Errno::EINVAL) if start >= VM_MIN_USER_ADDRESS => {
                let flags = MAP_ANON | MAP_PRIVATE | MAP_FIXED;
                vms::mmap(vmid, start, len, PROT_NONE, flags, FD_NONE, 0)
                    .map_err(|_| Errno::ENOMEM)?;
                vms::munmap(vmid, start, len).map(|_| ())
            }
            r => r.map(|_| ()),
        }
    }

    /// Drops the references of the file pages in `[start, end)` (which the
    /// host maps no more).
    fn drop_slots(&mut self, start: u64, end: u64) {
        let mut gone = self.file.split_off(&start);
        let mut above = gone.split_off(&end);
        self.file.append(&mut above);
        let mut frames = self.frames.borrow_mut();
        for slot in gone.values() {
            frames.decref(slot.page);
        }
    }

    /// Maps file page `page` (a reference taken here) at `va`, `private`
    /// or shared, with `prot`, replacing what was there.
    fn map_one(&mut self, va: u64, page: u64, prot: u64, private: bool) -> Result<(), Errno> {
        if !self.frames.borrow_mut().incref(page) {
            return Err(Errno::ENOMEM);
        }
        // Populated: the process touches the page as soon as it runs again
        // (it is faulting on it), and would otherwise fault to the host.
        let kind = if private { MAP_PRIVATE } else { MAP_SHARED };
        if let Err(e) = self.map_file_pages(va, PAGE_SIZE, prot, kind, page) {
            self.frames.borrow_mut().decref(page);
            return Err(e);
        }
        if let Some(old) = self.file.insert(va, Slot { page, private }) {
            self.frames.borrow_mut().decref(old.page);
        }
        Ok(())
    }

    /// Maps the file pages from guest-physical `page` on at `va` (`len`
    /// bytes, `kind` MAP_SHARED or MAP_PRIVATE), populated: the process
    /// touches them as soon as it runs again (it is faulting on one). The
    /// call is posted to go with that RUN (an exit less per fault); the
    /// host fails it only when it has no memory for the tables, and then
    /// the process is killed before it runs (`Tag::FaultMap`).
    fn map_file_pages(
        &mut self,
        va: u64,
        len: u64,
        prot: u64,
        kind: u64,
        page: u64,
    ) -> Result<(), Errno> {
        let call = vkernel_abi::Call::VmspaceMmap {
            id: self.vmid,
            addr: va,
            len,
            prot,
            flags: kind | MAP_FIXED | MAP_POPULATE,
            fd: PHYSMEM_FD,
            off: page,
        };
        // Exec: with the image's other calls.
        if self.hold(call, va as i64) {
            return Ok(());
        }
        let tag = Tag::FaultMap { vmid: self.vmid }.encode();
        if guestlib::batch::post(call, va as i64, tag) {
            return Ok(());
        }
        vms::mmap(
            self.vmid,
            va,
            len,
            prot,
            kind | MAP_FIXED | MAP_POPULATE,
            PHYSMEM_FD,
            page,
        )
        .map(|_| ())
    }

    /// The protection a file page of region `r` is mapped with: a private
    /// region's pages are read-only until copied.
    fn slot_prot(r: &Region, f: &FileMap, private: bool) -> u64 {
        if f.shared || private {
            r.prot
        } else {
            r.prot & !PROT_WRITE
        }
    }

    /// Maps the file page at `va` (in region `r`) shared (the file's own
    /// page), with the pages around it that the file already has and that
    /// are not mapped yet, one hypercall per physically contiguous run.
    fn map_around(&mut self, va: u64, r: &Region, f: &FileMap) -> Result<(), PageError> {
        let bytes = FILE_FAULT_AROUND * PAGE_SIZE;
        let window = va & !(bytes - 1);
        let (from, to) = (window.max(r.start), (window + bytes).min(r.end));
        // The window is read in first (reading may reclaim pages not
        // mapped yet; the faulting one is taken after it).
        let first = f.pgoff + (from - r.start) / PAGE_SIZE;
        f.object.readahead(first, first + (to - from) / PAGE_SIZE);
        let page = f.object.page(f.pgoff + (va - r.start) / PAGE_SIZE)?;
        self.map_range(from, to, r, f, Some((va, page)))
    }

    /// Maps the pages of `[from, to)` (at most [`FILE_FAULT_AROUND`], in
    /// region `r`) that the file already has and that are not mapped yet,
    /// shared (the file's own pages), one hypercall per physically
    /// contiguous run; `must`: a page (address, file page) that is mapped
    /// whatever the file says, and whose failure is the call's.
    fn map_range(
        &mut self,
        from: u64,
        to: u64,
        r: &Region,
        f: &FileMap,
        must: Option<(u64, u64)>,
    ) -> Result<(), PageError> {
        let eof = f.object.size().div_ceil(PAGE_SIZE);
        let prot = Self::slot_prot(r, f, false);
        let to = to.min(from + FILE_FAULT_AROUND * PAGE_SIZE);
        // (va, page) of every page to map, in address order.
        let mut run: [(u64, u64); FILE_FAULT_AROUND as usize] =
            [(0, 0); FILE_FAULT_AROUND as usize];
        let mut n = 0;
        let mut at = from;
        while at < to {
            let i = f.pgoff + (at - r.start) / PAGE_SIZE;
            let p = match must {
                Some((va, page)) if va == at => Some(page),
                _ if self.file.contains_key(&at) || i >= eof => None,
                _ => f.object.lookup(i),
            };
            if let Some(p) = p {
                run[n] = (at, p);
                n += 1;
            }
            at += PAGE_SIZE;
        }
        let mut i = 0;
        while i < n {
            let mut j = i + 1;
            while j < n
                && run[j].0 == run[j - 1].0 + PAGE_SIZE
                && run[j].1 == run[j - 1].1 + PAGE_SIZE
            {
                j += 1;
            }
            let (start, first) = run[i];
            let pages = &run[i..j];
            let mapped = {
                let mut frames = self.frames.borrow_mut();
                let mut taken = 0;
                while taken < pages.len() && frames.incref(pages[taken].1) {
                    taken += 1;
                }
                if taken < pages.len() {
                    for p in &pages[..taken] {
                        frames.decref(p.1);
                    }
                    false
                } else {
                    true
                }
            };
            let len = (j - i) as u64 * PAGE_SIZE;
            let ok = mapped
                && self
                    .map_file_pages(start, len, prot, MAP_SHARED, first)
                    .is_ok();
            if !ok {
                if mapped {
                    let mut frames = self.frames.borrow_mut();
                    for p in pages {
                        frames.decref(p.1);
                    }
                }
                // The others were a bonus; the page that must is not.
                if must.is_some_and(|(va, _)| (start..start + len).contains(&va)) {
                    return Err(PageError::NoMem);
                }
            } else {
                for &(v, p) in pages {
                    // No slot was there (checked above), so nothing to drop.
                    self.file.insert(
                        v,
                        Slot {
                            page: p,
                            private: false,
                        },
                    );
                }
            }
            i = j;
        }
        Ok(())
    }

    /// Gives the private region `r` its own copy of the page at `va`
    /// (mapped `MAP_PRIVATE` over the file's page, copied by the host on
    /// first touch), unless it has one.
    fn make_private(&mut self, va: u64, r: &Region, f: &FileMap) -> Result<(), PageError> {
        if self.file.get(&va).is_some_and(|s| s.private) {
            return Ok(());
        }
        let page = f.object.page(f.pgoff + (va - r.start) / PAGE_SIZE)?;
        self.map_one(va, page, r.prot, true)
            .map_err(|_| PageError::NoMem)
    }

    /// Copies between process memory at `addr` and `buf` (`to_process`:
    /// into the process); the bytes copied, short at the first page the
    /// process cannot have. Anonymous memory goes through the host's
    /// pread/pwrite; a file's pages are copied here, straight from or to
    /// the file's page unless the process has its own copy.
    fn copy(
        &mut self,
        regions: &Regions,
        addr: u64,
        buf: *mut u8,
        len: usize,
        to_process: bool,
    ) -> usize {
        let mut done = 0usize;
        while done < len {
            let va = addr + done as u64;
            let Some(r) = regions.region_of(va) else {
                break;
            };
            let Some(f) = r.file() else {
                // Anonymous: the host, up to the region's end.
                let n = ((r.end - va) as usize).min(len - done);
                // SAFETY: `buf + done .. + n` lies in the caller's buffer.
                let got = unsafe {
                    if to_process {
                        let b = core::slice::from_raw_parts(buf.add(done), n);
                        vms::pwrite(self.vmid, b, va)
                    } else {
                        let b = core::slice::from_raw_parts_mut(buf.add(done), n);
                        vms::pread(self.vmid, b, va)
                    }
                }
                .map_or(0, |g| g as usize);
                done += got;
                if got < n {
                    break;
                }
                continue;
            };
            if r.prot == PROT_NONE || (to_process && f.shared && r.prot & PROT_WRITE == 0) {
                // As the guest pmap: a shared file is written only where
                // the process may write it.
                break;
            }
            let page_va = va & !(PAGE_SIZE - 1);
            let off = (va - page_va) as usize;
            let n = (PAGE_SIZE as usize - off).min(len - done);
            if to_process && !f.shared && self.make_private(page_va, r, f).is_err() {
                break;
            }
            if self.file.get(&page_va).is_some_and(|s| s.private) {
                // The process's own copy lives in the host's pool.
                // SAFETY: as above.
                let got = unsafe {
                    if to_process {
                        vms::pwrite(self.vmid, core::slice::from_raw_parts(buf.add(done), n), va)
                    } else {
                        let b = core::slice::from_raw_parts_mut(buf.add(done), n);
                        vms::pread(self.vmid, b, va)
                    }
                }
                .map_or(0, |g| g as usize);
                done += got;
                if got < n {
                    break;
                }
                continue;
            }
            let Ok(page) = f.object.page(f.pgoff + (page_va - r.start) / PAGE_SIZE) else {
                break;
            };
            let pa = (page as usize + off) as *mut u8;
            // SAFETY: `pa .. pa + n` lies in one page the file holds (and
            // the file outlives this call: the region holds it);
            // `buf + done .. + n` in the caller's buffer.
            unsafe {
                if to_process {
                    core::ptr::copy_nonoverlapping(buf.add(done), pa, n);
                } else {
                    core::ptr::copy_nonoverlapping(pa, buf.add(done), n);
                }
            }
            done += n;
        }
        done
    }
}

impl Drop for HostPmap {
    fn drop(&mut self) {
        // Never created (its creation was held back and not sent, or
        // failed): nothing to destroy; the file pages it holds go.
        if !self.made || self.deferred.as_ref().is_some_and(|d| !d.created) {
            let mut frames = self.frames.borrow_mut();
            for slot in self.file.values() {
                frames.decref(slot.page);
            }
            return;
        }
        // Fails only for a vmspace that is running or unknown, neither of
        // which the last reference to an address space can see. Posted
        // (it goes with the next RUN): nothing runs in this vmspace again,
        // so its file pages may be let go now; were the destroy to fail
        // all the same, the failure is reported and the host keeps a
        // vmspace that never runs.
        let tag = crate::proc::posted::Tag::Destroy { vmid: self.vmid }.encode();
        let posted =
            guestlib::batch::post(vkernel_abi::Call::VmspaceDestroy { id: self.vmid }, 0, tag);
        if posted || vms::destroy(self.vmid).is_ok() {
            let mut frames = self.frames.borrow_mut();
            for slot in self.file.values() {
                frames.decref(slot.page);
            }
        }
    }
}

impl Pmap for HostPmap {
    /// Anonymous memory is the host's; a file mapping's pages may not be
    /// in the host map yet (they come in through the kernel's faults).
    fn host_copyable(&self, regions: &Regions, addr: u64, len: usize) -> bool {
        self.deferred.is_none() && !self.touches_file(regions, addr, len)
    }

    fn send_deferred(&mut self) -> Result<(), Errno> {
        match self.deferred.take() {
            Some(d) => self.send(d, true),
            None => Ok(()),
        }
    }

    fn vmid(&self) -> u64 {
        self.vmid
    }

    fn unmade(&mut self) {
        self.made = false;
    }

    fn map_anon(&mut self, start: u64, end: u64, prot: u64, stack: bool) -> Result<(), Errno> {
        let flags = MAP_ANON | MAP_PRIVATE | MAP_FIXED | if stack { MAP_STACK } else { 0 };
        let call = Call::VmspaceMmap {
            id: self.vmid,
            addr: start,
            len: end - start,
            prot,
            flags,
            fd: FD_NONE,
            off: 0,
        };
        if !self.hold(call, start as i64) {
            vms::mmap(self.vmid, start, end - start, prot, flags, FD_NONE, 0)?;
        }
        self.drop_slots(start, end);
        Ok(())
    }

    fn map_file(&mut self, before: &Regions, start: u64, end: u64) -> Result<(), Errno> {
        self.unmap(before, start, end)
    }

    fn unmap(&mut self, before: &Regions, start: u64, end: u64) -> Result<(), Errno> {
        // Only what the host maps is unmapped: a fresh file mapping (ld.so
        // maps each library, then each segment over it) has no entries
        // yet, and the seed's munmap refuses a range with holes, which
        // cost a fill and a second munmap each time (three hypercalls
        // where none or one is needed).
        let runs = self.host_runs(before, start, end);
        if !runs.is_empty() {
            // What is held back goes first, so calls stay in order.
            self.undefer()?;
        }
        if runs.len() > 2 {
            // Many runs (a file mapping with scattered pages touched): one
            // mapping over the whole span replaces them, then goes.
            let (s, e) = (runs[0].0, runs[runs.len() - 1].1);
            Self::unmap_span(self.vmid, s, e)?;
        } else {
            for &(s, e) in &runs {
                Self::unmap_span(self.vmid, s, e)?;
            }
        }
        self.drop_slots(start, end);
        Ok(())
    }

    fn protect(&mut self, regions: &Regions, start: u64, end: u64, prot: u64) -> Result<(), Errno> {
        for r in regions.pieces(start, end) {
            let Some(f) = r.file() else {
                self.mprotect(r.start, r.end, prot)?;
                continue;
            };
            // Only the pages mapped have host entries: one call per run of
            // them with one protection.
            let mut run: Option<(u64, u64, u64)> = None;
            let slots: alloc::vec::Vec<(u64, Slot)> = self
                .file
                .range(r.start..r.end)
                .map(|(&v, &s)| (v, s))
                .collect();
            for (va, slot) in slots {
                let p = Self::slot_prot(&r, f, slot.private);
                run = match run {
                    Some((s, e, rp)) if e == va && rp == p => Some((s, e + PAGE_SIZE, p)),
                    Some((s, e, rp)) => {
                        self.mprotect(s, e, rp)?;
                        Some((va, va + PAGE_SIZE, p))
                    }
                    None => Some((va, va + PAGE_SIZE, p)),
                };
            }
            if let Some((s, e, rp)) = run {
                self.mprotect(s, e, rp)?;
            }
        }
        Ok(())
    }

    fn discard(&mut self, start: u64, end: u64) -> Result<(), Errno> {
        self.undefer()?;
        // A private copy of a file page is dropped (the host copies the
        // file's page again on the next touch); a shared one stays.
        vms::mcontrol(self.vmid, start, end - start, MADV_DONTNEED, 0).map(|_| ())
    }

    fn prefault(
        &mut self,
        regions: &Regions,
        start: u64,
        end: u64,
        write: bool,
    ) -> Result<(), Errno> {
        for r in regions.pieces(start, end) {
            let Some(f) = r.file() else {
                // Held back: at the batch's end, among its hints.
                if let Some(d) = self.deferred.as_mut() {
                    if d.written.try_reserve(1).is_ok() {
                        d.written.push((r.start, r.end));
                    }
                    continue;
                }
                vms::mcontrol(self.vmid, r.start, r.end - r.start, MADV_WILLNEED, 0)?;
                continue;
            };
            if write && !f.shared && r.prot & PROT_WRITE != 0 {
                // Pages about to be written get their copies now, not a
                // fault (two exits) each: a program's data segment is
                // written all over as it starts (python3's 318 pages).
                let mut va = r.start;
                while va < r.end && self.make_private(va, &r, f).is_ok() {
                    va += PAGE_SIZE;
                }
            } else if r.prot != PROT_NONE {
                // A hint: what cannot be mapped faults in later.
                let end = r.end.min(r.start + PREFAULT_MAX_PAGES * PAGE_SIZE);
                let _ = self.map_range(r.start, end, &r, f, None);
            }
        }
        Ok(())
    }

    fn fault(&mut self, regions: &Regions, addr: u64, error_code: u64) -> Fault {
        if self.undefer().is_err() {
            return Fault::OutOfMemory;
        }
        // The host resolves every fault it can in anonymous memory and in
        // the file pages mapped; what it delivers there is the process's
        // own.
        let Some(r) = regions.region_of(addr) else {
            return Fault::Segv;
        };
        let write_access = error_code & pf::W != 0;
        let allowed = if write_access {
            r.prot & PROT_WRITE != 0
        } else if error_code & pf::I != 0 {
            r.prot & PROT_EXEC != 0
        } else {
            r.prot != PROT_NONE
        };
        if !allowed || error_code & pf::RSVD != 0 {
            return Fault::Segv;
        }
        let Some(f) = r.file() else {
            // Anonymous memory the access is allowed to: the host delivers
            // such a fault only when its pool could not back the page
            // (pages are charged when touched). Ask once more, for this
            // page alone: still short, the process is out of memory.
            let va = addr & !(PAGE_SIZE - 1);
            return match vms::mcontrol(self.vmid, va, PAGE_SIZE, MADV_WILLNEED, 0) {
                Ok(_) => Fault::Resolved,
                Err(_) => Fault::OutOfMemory,
            };
        };
        let va = addr & !(PAGE_SIZE - 1);
        let done = if write_access && !f.shared {
            self.make_private(va, r, f)
        } else if self.file.contains_key(&va) {
            // Mapped, and the host would have resolved an allowed access.
            return Fault::Segv;
        } else {
            self.map_around(va, r, f)
        };
        match done {
            Ok(()) => Fault::Resolved,
            Err(PageError::Bus) => Fault::Bus,
            Err(PageError::NoMem) => Fault::OutOfMemory,
        }
    }

    fn read(&mut self, regions: &Regions, addr: u64, buf: &mut [u8]) -> usize {
        if self.undefer().is_err() {
            return 0;
        }
        self.copy(regions, addr, buf.as_mut_ptr(), buf.len(), false)
    }

    fn write(&mut self, regions: &Regions, addr: u64, buf: &[u8]) -> usize {
        if let Some(n) = self.hold_write(regions, addr, &[buf]) {
            return n;
        }
        if self.undefer().is_err() {
            return 0;
        }
        // `copy` only reads through the pointer when copying into the
        // process.
        self.copy(regions, addr, buf.as_ptr() as *mut u8, buf.len(), true)
    }

    /// Only into one anonymous region: there `write` is one pwrite that
    /// the host completes unless it has no page to give (the region is
    /// the process's, and it cannot change before the RUN the write goes
    /// with).
    fn post_write(&mut self, regions: &Regions, addr: u64, buf: &[u8], tag: u64) -> bool {
        if self.deferred.is_some() {
            return false;
        }
        let Some(end) = addr.checked_add(buf.len() as u64) else {
            return false;
        };
        // Writable too: the host's pwrite does not look at protections,
        // so a write into read-only memory is left to the direct path.
        let anon = regions
            .region_of(addr)
            .is_some_and(|r| r.file().is_none() && end <= r.end && r.prot & PROT_WRITE != 0);
        anon && guestlib::batch::post_write(self.vmid, buf, addr, tag)
    }

    fn read_v(&mut self, regions: &Regions, addr: u64, bufs: &mut [&mut [u8]]) -> usize {
        if self.undefer().is_err() {
            return 0;
        }
        if self.touches_file(regions, addr, bufs.iter().map(|b| b.len()).sum()) {
            return self.each_piece(
                regions,
                addr,
                bufs.iter_mut().map(|b| (b.as_mut_ptr(), b.len())),
                false,
            );
        }
        let count = bufs.iter().filter(|b| !b.is_empty()).count();
        let pieces = bufs.iter_mut().map(|b| (b.as_mut_ptr() as u64, b.len()));
        self.copy_v(addr, count, pieces, true)
    }

    fn write_v(&mut self, regions: &Regions, addr: u64, bufs: &[&[u8]]) -> usize {
        if let Some(n) = self.hold_write(regions, addr, bufs) {
            return n;
        }
        if self.undefer().is_err() {
            return 0;
        }
        if self.touches_file(regions, addr, bufs.iter().map(|b| b.len()).sum()) {
            // `copy` only reads through the pointers when copying into the
            // process.
            return self.each_piece(
                regions,
                addr,
                bufs.iter().map(|b| (b.as_ptr() as *mut u8, b.len())),
                true,
            );
        }
        let count = bufs.iter().filter(|b| !b.is_empty()).count();
        let pieces = bufs.iter().map(|b| (b.as_ptr() as u64, b.len()));
        self.copy_v(addr, count, pieces, false)
    }

    /// The host copies the vmspace: private memory (and private copies of
    /// file pages) copied, file pages mapped shared stay shared. The child
    /// holds its own references on them.
    /// The host copies every page at once: `_stack_va` is no hint it needs.
    fn fork(&mut self, _: &Regions, child: u64, _stack_va: u64) -> Result<Box<dyn Pmap>, Errno> {
        self.undefer()?;
        let mut file = BTreeMap::new();
        {
            let mut frames = self.frames.borrow_mut();
            for (&va, &slot) in &self.file {
                if !frames.incref(slot.page) {
                    for s in file.values() {
                        let s: &Slot = s;
                        frames.decref(s.page);
                    }
                    return Err(Errno::ENOMEM);
                }
                file.insert(va, slot);
            }
        }
        // Posted: the copy is made with the next RUN (the child's, as a
        // rule), before anything runs, so it copies the parent as it is
        // now. Should the host fail it then, the child is killed before
        // it runs (`Tag::ForkFailed`), as Linux's OOM killer may kill a
        // child that fork could make.
        let tag = Tag::ForkFailed {
            vmid: child,
            made: false,
        }
        .encode();
        let posted = guestlib::batch::post(
            vkernel_abi::Call::VmspaceClone {
                src: self.vmid,
                dst: child,
            },
            0,
            tag,
        );
        if !posted {
            if let Err(e) = vms::clone(self.vmid, child) {
                let mut frames = self.frames.borrow_mut();
                for s in file.values() {
                    let s: &Slot = s;
                    frames.decref(s.page);
                }
                return Err(e);
            }
        }
        let c = HostPmap {
            vmid: child,
            frames: self.frames.clone(),
            file,
            iov: Vec::new(),
            made: true,
            deferred: None,
        };
        Ok(Box::new(c))
    }
}
