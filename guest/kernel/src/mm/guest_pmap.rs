//! The guest pmap (`pmap=guest`): process page tables kept by this kernel
//! in its own RAM, as DragonFly's vkernel keeps them. Each process's
//! vmspace holds one `MAP_VPAGETABLE | MAP_SHARED` entry over the whole user
//! range, and `MADV_SETMAP` names the root of the process's tables; the
//! host follows them (through its shadow) and sends every fault they do not
//! allow back here as `T_PAGEFLT`.
//!
//! A fault outside the process's regions ([`super::regions`]: what mmap,
//! brk and exec made), or against their protection, is the process's
//! (SIGSEGV). What lives here:
//! - the 4-level tables. Pages come from [`physmem`] on first touch
//!   (demand-zero). A leaf holding a page has [`HELD`] set, and keeps its
//!   page while not present (under `PROT_NONE`);
//! - copy-on-write: fork shares every page with the child, read-only and
//!   marked [`COW`] in both; the first write copies the page (or, when
//!   nobody else holds it any more, just makes it writable);
//! - file mappings: the leaves name the file's own pages (each leaf holds
//!   a reference, so a page is never reused while mapped). A shared
//!   mapping's leaves are marked [`SHM`] and stay shared across fork; a
//!   private mapping's are [`COW`] from the start, so the first write
//!   copies the page and the file never sees it.
//!
//! The host caches translations from these tables. Whenever this module
//! takes something away from a present leaf (another page, fewer rights,
//! not present) it issues `MADV_INVAL` for the range before the process
//! runs again; adding rights needs none (the host's stale, narrower
//! translation faults and the host walks the tables again).
//!
//! Table entries are written with volatile accesses: the host sets A and D
//! bits in them while the process runs.

use alloc::boxed::Box;
use alloc::rc::Rc;
use core::cell::RefCell;

use super::physmem::{Frames, PhysMem};
use super::regions::{Backing, PageError, Region, Regions};
use super::space::{Fault, Pmap};
use crate::proc::posted::Tag;
use guestlib::vmspace as vms;
use vkernel_abi::layout::{PAGE_SIZE, VM_MAX_USER_ADDRESS, VM_MIN_USER_ADDRESS};
use vkernel_abi::mman::*;
use vkernel_abi::paging::{leaf_flags, pf, pte};
use vkernel_abi::Errno;

/// Leaf bit (ignored by the MMU): the leaf holds a page reference, present
/// or not.
const HELD: u64 = 1 << 9;
/// Leaf bit (ignored by the MMU): the page may be shared; copy it before
/// writing.
const COW: u64 = 1 << 10;
/// Leaf bit (ignored by the MMU): a page of a shared file mapping; fork
/// shares it as it is.
const SHM: u64 = 1 << 11;
/// Non-leaf entries allow everything; leaves decide.
const TABLE: u64 = pte::P | pte::RW | pte::US;
/// Demand-zero fault-around: a fault on a fresh page also maps the fresh
/// pages of its aligned window of this many pages (inside the region), so
/// the host's own fault-around shadows them all at the next touch instead
/// of each page costing a trip through this kernel.
const FAULT_AROUND: u64 = 64;
/// The largest window a sequential first touch grows to (pages): one page
/// table, 2 MiB (see [`GuestPmap::fresh_window`]).
const MAX_FAULT_AROUND: u64 = 512;
/// The user range every process's `MAP_VPAGETABLE` entry covers.
const USER_LEN: u64 = VM_MAX_USER_ADDRESS - VM_MIN_USER_ADDRESS;

/// The `vmspace_mmap` of vmspace `vmid`'s one `MAP_VPAGETABLE` entry over
/// the whole user range (its translations come from this kernel's tables).
fn user_range_call(vmid: u64) -> vkernel_abi::Call {
    vkernel_abi::Call::VmspaceMmap {
        id: vmid,
        addr: VM_MIN_USER_ADDRESS,
        len: USER_LEN,
        prot: PROT_READ | PROT_WRITE | PROT_EXEC,
        flags: MAP_VPAGETABLE | MAP_SHARED | MAP_FIXED,
        fd: PHYSMEM_FD,
        off: 0,
    }
}

fn read(slot: u64) -> u64 {
    // SAFETY: `slot` is an entry of a table page this module allocated
    // (identity-mapped kernel RAM).
    unsafe { core::ptr::read_volatile(slot as *const u64) }
}

fn write(slot: u64, e: u64) {
    // SAFETY: as in `read`.
    unsafe { core::ptr::write_volatile(slot as *mut u64, e) }
}

/// A held leaf for `page` under `prot` with software bits `bits` ([`COW`],
/// [`SHM`]); a COW page is never writable. The flags preset A (and D when
/// writable), so the host's fault-around shadows neighbours and its shadow
/// is writable from the first write.
fn leaf(page: u64, prot: u64, bits: u64) -> u64 {
    let mut f = leaf_flags(prot);
    if bits & COW != 0 {
        f &= !(pte::RW | pte::D);
    }
    page | HELD | (bits & (COW | SHM)) | f
}

/// The software bits a fresh leaf of a region gets.
fn region_bits(r: &Region) -> u64 {
    match r.file() {
        Some(f) if f.shared => SHM,
        Some(_) => COW,
        None => 0,
    }
}

/// The leaf slot for `va`, creating missing tables if `create`.
fn slot(pm: &mut PhysMem, root: u64, va: u64, create: bool) -> Result<Option<u64>, Errno> {
    let mut table = root;
    for level in (1..4).rev() {
        let entry_slot = table + ((va >> (12 + 9 * level)) & 0x1ff) * 8;
        let e = read(entry_slot);
        table = if e & pte::P != 0 {
            e & pte::ADDR
        } else if create {
            let t = pm.alloc_zeroed().ok_or(Errno::ENOMEM)?;
            write(entry_slot, t | TABLE);
            t
        } else {
            return Ok(None);
        };
    }
    Ok(Some(table + ((va >> 12) & 0x1ff) * 8))
}

/// Calls `f(va, slot)` for every held leaf in `[start, end)` below
/// `table` (a level-`level` table covering from `base`).
fn each_leaf(table: u64, level: u32, base: u64, start: u64, end: u64, f: &mut dyn FnMut(u64, u64)) {
    let span = 1u64 << (12 + 9 * (level - 1));
    for i in 0..512u64 {
        let lo = base + i * span;
        if lo >= end || lo + span <= start {
            continue;
        }
        let slot = table + i * 8;
        let e = read(slot);
        if level == 1 {
            if e & HELD != 0 {
                f(lo, slot);
            }
        } else if e & pte::P != 0 {
            each_leaf(e & pte::ADDR, level - 1, lo, start, end, f);
        }
    }
}

/// Frees the tables below `table` (a level-`level` table covering from
/// `base`) that overlap `[start, end)` and hold nothing any more.
fn prune(pm: &mut PhysMem, table: u64, level: u32, base: u64, start: u64, end: u64) {
    let span = 1u64 << (12 + 9 * (level - 1));
    for i in 0..512u64 {
        let lo = base + i * span;
        if lo >= end || lo + span <= start {
            continue;
        }
        let e = read(table + i * 8);
        if level == 1 || e & pte::P == 0 {
            continue;
        }
        let child = e & pte::ADDR;
        prune(pm, child, level - 1, lo, start, end);
        if (0..512u64).all(|j| read(child + j * 8) == 0) {
            write(table + i * 8, 0);
            pm.decref(child);
        }
    }
}

/// Frees the tables below `table` (level `level`) and the pages their
/// leaves hold.
fn free_tree(pm: &mut PhysMem, table: u64, level: u32) {
    for i in 0..512u64 {
        let e = read(table + i * 8);
        if level == 1 {
            if e & HELD != 0 {
                pm.decref(e & pte::ADDR);
            }
        } else if e & pte::P != 0 {
            free_tree(pm, e & pte::ADDR, level - 1);
        }
    }
    pm.decref(table);
}

/// Drops the host's translations for `[start, end)`. Cannot fail for a
/// live space over the user range; if it did, a stale translation could
/// let a process write a page it no longer owns, so the kernel stops.
fn inval(vmid: u64, start: u64, end: u64) {
    if let Err(e) = vms::mcontrol(vmid, start, end - start, MADV_INVAL, 0) {
        panic!(
            "MADV_INVAL of {vmid:#x} [{start:#x}, {end:#x}) failed: {}",
            e.name()
        );
    }
}

/// `inval` posted to go with the next RUN of any vmspace (the process
/// runs again only after it: its translations of the range are gone by
/// then), or at once when the batch is full.
fn inval_posted(vmid: u64, start: u64, end: u64) {
    let call = vkernel_abi::Call::VmspaceMcontrol {
        id: vmid,
        addr: start,
        len: end - start,
        behav: MADV_INVAL,
        value: 0,
    };
    let tag = Tag::Inval { vmid }.encode();
    if !guestlib::batch::post(call, 0, tag) {
        inval(vmid, start, end);
    }
}

/// Most pages a process's children broke copy-on-write on that its
/// next forks copy at once.
const FORK_HOT_PAGES: usize = 16;

/// The pages a process's children wrote first thing after fork (their
/// copy-on-write breaks, in glibc's fork: its locks and list heads),
/// which its next forks give the child as copies at once: each break is
/// a fault to this kernel, an invalidation and the host's re-shadowing.
#[derive(Default)]
struct ForkHot {
    pages: [u64; FORK_HOT_PAGES],
    len: usize,
    /// Where the next page goes once full (the oldest is replaced).
    next: usize,
}

impl ForkHot {
    fn note(&mut self, va: u64) {
        if self.pages[..self.len].contains(&va) {
            return;
        }
        if self.len < FORK_HOT_PAGES {
            self.pages[self.len] = va;
            self.len += 1;
        } else {
            self.pages[self.next] = va;
            self.next = (self.next + 1) % FORK_HOT_PAGES;
        }
    }

    fn contains(&self, va: u64) -> bool {
        self.pages[..self.len].contains(&va)
    }
}

/// A vmspace whose page tables this kernel keeps.
pub struct GuestPmap {
    vmid: u64,
    /// Guest-physical address of the PML4.
    root: u64,
    frames: Frames,
    /// The host has (or will have, once posted calls are sent) the
    /// vmspace: false after a posted create that failed.
    made: bool,
    /// The page just past the last demand-zero window mapped, and that
    /// window's size in pages: a fault there is the next of a sequential
    /// first touch.
    sequential_next: u64,
    sequential_window: u64,
    /// The lowest page of the last window mapped in a stack (`MAP_STACK`)
    /// region, and its size: a fault a little below it is the next of a
    /// stack growing down ([`GuestPmap::stack_window`]).
    stack_low: u64,
    stack_window: u64,
    /// The pages this process's children broke copy-on-write on.
    fork_hot: Rc<RefCell<ForkHot>>,
    /// The parent's (for a forked child): where its breaks are noted.
    parent_hot: Option<Rc<RefCell<ForkHot>>>,
}

impl GuestPmap {
    /// Drops the pages of `[start, end)` (leaves cleared, references
    /// released), the host's translations for them, and the tables left
    /// empty (the host walks these tables only on a fault, from the root,
    /// and the INVAL dropped what it had taken from them).
    fn clear_pages(&mut self, start: u64, end: u64) {
        let pm = &mut *self.frames.borrow_mut();
        let mut any = false;
        each_leaf(self.root, 4, 0, start, end, &mut |_, slot| {
            pm.decref(read(slot) & pte::ADDR);
            write(slot, 0);
            any = true;
        });
        if any {
            inval(self.vmid, start, end);
            prune(pm, self.root, 4, 0, start, end);
        }
    }

    /// The demand-zero window, in pages, for a fresh fault at `va`:
    /// [`FAULT_AROUND`], or, for a fault on the page just past the previous
    /// window (a sequential first touch), twice that window, up to
    /// [`MAX_FAULT_AROUND`]. A sparse toucher gets 64 pages per touch as
    /// before; a sequential one never gets more mapped ahead than it has
    /// touched in order (nor more than 2 MiB), as the host path's
    /// fault-around (vmspace `Vmspace::fault_window`), whose shadowing of
    /// the accessed leaves follows the same windows.
    fn fresh_window(&self, va: u64) -> u64 {
        if va & !(PAGE_SIZE - 1) == self.sequential_next && self.sequential_window >= FAULT_AROUND {
            (self.sequential_window * 2).min(MAX_FAULT_AROUND)
        } else {
            FAULT_AROUND
        }
    }

    /// Maps zeroed pages at the fresh (never held) addresses of the
    /// fault-around window of `va` inside region `r`, while memory lasts.
    /// The window of a fault at `va` in a stack region:
    /// `STACK_FAULT_AROUND` pages, or for a fault at most `STACK_GROWTH_GAP` pages below
    /// the last stack window (a stack growing down), twice that window,
    /// up to [`MAX_FAULT_AROUND`], as the host path's
    /// (vmspace `Vmspace::stack_window`).
    fn stack_window(&self, va: u64) -> u64 {
        let below = self.stack_low.saturating_sub(STACK_GROWTH_GAP * PAGE_SIZE);
        if self.stack_window >= STACK_FAULT_AROUND && va < self.stack_low && va >= below {
            (self.stack_window * 2).min(MAX_FAULT_AROUND)
        } else {
            STACK_FAULT_AROUND
        }
    }

    fn map_fresh_around(&mut self, va: u64, r: &Region) {
        let stack = r.is_stack();
        let mut pages = if stack {
            self.stack_window(va)
        } else {
            self.fresh_window(va)
        };
        // Until a window is mapped whole, the next fault starts over.
        self.sequential_next = 0;
        let pm = &mut *self.frames.borrow_mut();
        // Short of memory, pages nobody asked for would only hasten an
        // out-of-memory kill: a grown window falls back to the base one,
        // and below four of those nothing is mapped around.
        if pm.free_pages() < 4 * pages {
            pages = pages.min(FAULT_AROUND);
        }
        if pm.free_pages() < 4 * pages {
            return;
        }
        let bytes = pages * PAGE_SIZE;
        let window = va & !(bytes - 1);
        let (from, to) = (window.max(r.start), (window + bytes).min(r.end));
        let Ok(Some(first)) = slot(pm, self.root, from, false) else {
            return;
        };
        // The window lies inside one page table (at most 512 pages,
        // aligned).
        for i in 0..(to - from) / PAGE_SIZE {
            let s = first + i * 8;
            if read(s) & HELD != 0 {
                continue;
            }
            let Some(page) = pm.alloc_zeroed() else {
                return;
            };
            write(s, leaf(page, r.prot, 0));
        }
        if stack {
            self.stack_low = from;
            self.stack_window = pages;
        }
        self.sequential_next = to;
        self.sequential_window = pages;
    }

    /// Maps the pages the file already has in the fault-around window of
    /// `va` inside file region `r` (and inside the file), as Linux's
    /// `filemap_map_pages`: no page is allocated for them.
    fn map_file_around(&mut self, va: u64, r: &Region) {
        let Some(f) = r.file() else {
            return;
        };
        let bytes = FAULT_AROUND * PAGE_SIZE;
        let window = va & !(bytes - 1);
        let (from, to) = (window.max(r.start), (window + bytes).min(r.end));
        // Before the frames are borrowed: reading allocates pages.
        let index = f.pgoff + (from - r.start) / PAGE_SIZE;
        f.object.readahead(index, index + (to - from) / PAGE_SIZE);
        let eof = f.object.size().div_ceil(PAGE_SIZE);
        let pm = &mut *self.frames.borrow_mut();
        let Ok(Some(first)) = slot(pm, self.root, from, false) else {
            return;
        };
        let bits = region_bits(r);
        for i in 0..(to - from) / PAGE_SIZE {
            let s = first + i * 8;
            let index = f.pgoff + (from - r.start) / PAGE_SIZE + i;
            if read(s) & HELD != 0 || index >= eof {
                continue;
            }
            let Some(page) = f.object.lookup(index) else {
                continue;
            };
            if !pm.incref(page) {
                return;
            }
            write(s, leaf(page, r.prot, bits));
        }
    }

    /// Makes the page at `va` (in region `r`) held and present; for
    /// `write`, also private (copy-on-write broken) unless the region
    /// shares a file's pages. Returns the page.
    /// Whether a page is in place at `va`.
    fn holds(&self, va: u64) -> bool {
        let s = slot(
            &mut self.frames.borrow_mut(),
            self.root,
            va & !(PAGE_SIZE - 1),
            false,
        );
        s.ok().flatten().is_some_and(|s| read(s) & HELD != 0)
    }

    fn fault_in(&mut self, va: u64, r: &Region, write_access: bool) -> Result<u64, PageError> {
        let va = va & !(PAGE_SIZE - 1);
        let prot = r.prot;
        let s = slot(&mut self.frames.borrow_mut(), self.root, va, true)
            .ok()
            .flatten()
            .ok_or(PageError::NoMem)?;
        let mut e = read(s);
        if e & HELD == 0 {
            let page = match &r.backing {
                Backing::Anon { .. } => self
                    .frames
                    .borrow_mut()
                    .alloc_zeroed()
                    .ok_or(PageError::NoMem)?,
                Backing::File(f) => {
                    // The file allocates from the same frames: not
                    // borrowed here.
                    let index = f.pgoff + (va - r.start) / PAGE_SIZE;
                    let page = f.object.page(index)?;
                    if write_access && !f.shared {
                        // A private copy at once: no leaf named the file's
                        // page, so the host has nothing to forget.
                        let copy = self.frames.borrow_mut().alloc().ok_or(PageError::NoMem)?;
                        // SAFETY: whole pages of identity-mapped RAM; `copy`
                        // is ours, `page` the file's (alive: `r` holds it).
                        unsafe {
                            core::ptr::copy_nonoverlapping(
                                page as *const u8,
                                copy as *mut u8,
                                PAGE_SIZE as usize,
                            )
                        };
                        write(s, leaf(copy, prot, 0));
                        return Ok(copy);
                    }
                    if !self.frames.borrow_mut().incref(page) {
                        return Err(PageError::NoMem);
                    }
                    page
                }
            };
            e = leaf(page, prot, region_bits(r));
            write(s, e);
            if !(write_access && e & COW != 0) {
                return Ok(page);
            }
        }
        let pm = &mut *self.frames.borrow_mut();
        let page = e & pte::ADDR;
        if !(write_access && e & COW != 0) {
            if e & pte::P == 0 && leaf_flags(prot) != 0 {
                write(s, leaf(page, prot, e));
            }
            return Ok(page);
        }
        if pm.refs(page) == 1 {
            // Nobody else holds it: writable in place, more rights only.
            write(s, leaf(page, prot, 0));
            return Ok(page);
        }
        let copy = pm.alloc().ok_or(PageError::NoMem)?;
        // SAFETY: both are whole pages of identity-mapped RAM; `copy` is ours.
        unsafe {
            core::ptr::copy_nonoverlapping(page as *const u8, copy as *mut u8, PAGE_SIZE as usize)
        };
        write(s, leaf(copy, prot, 0));
        pm.decref(page);
        inval_posted(self.vmid, va, va + PAGE_SIZE);
        if let Some(hot) = &self.parent_hot {
            hot.borrow_mut().note(va);
        }
        Ok(copy)
    }

    /// Creates vmspace `vmid` with an empty guest pmap: one
    /// `MAP_VPAGETABLE` entry over the whole user range, rooted at a fresh
    /// PML4 in guest RAM.
    pub fn create(vmid: u64, frames: Frames) -> Result<Box<dyn Pmap>, Errno> {
        Ok(Box::new(GuestPmap::new(vmid, frames)?))
    }

    fn new(vmid: u64, frames: Frames) -> Result<GuestPmap, Errno> {
        use vkernel_abi::{BatchEntry, Call, BATCH_EXPECT_ANY};
        let root = frames.borrow_mut().alloc_zeroed().ok_or(Errno::ENOMEM)?;
        // The three calls as one batch: one exit, not three (exec makes
        // its new space here).
        let mut calls = [
            BatchEntry::new(
                Call::VmspaceCreate {
                    id: vmid,
                    ty: 0,
                    data: 0,
                },
                BATCH_EXPECT_ANY,
            ),
            BatchEntry::new(user_range_call(vmid), VM_MIN_USER_ADDRESS as i64),
            BatchEntry::new(
                Call::VmspaceMcontrol {
                    id: vmid,
                    addr: VM_MIN_USER_ADDRESS,
                    len: USER_LEN,
                    behav: MADV_SETMAP,
                    value: root,
                },
                BATCH_EXPECT_ANY,
            ),
        ];
        if let Err(u) = guestlib::batch::send(&mut calls) {
            if u.index > 0 {
                // Made, but not set up: it goes again.
                let _ = vms::destroy(vmid);
            }
            frames.borrow_mut().decref(root);
            return Err(if u.errno > 0 {
                Errno(u.errno as i32)
            } else {
                Errno::ENOMEM
            });
        }
        Ok(GuestPmap {
            vmid,
            root,
            frames,
            made: true,
            sequential_next: 0,
            sequential_window: 0,
            stack_low: 0,
            stack_window: 0,
            fork_hot: Rc::default(),
            parent_hot: None,
        })
    }

    /// [`GuestPmap::new`] for a fork's child, its three calls posted: they
    /// go with the next RUN (the child's, as a rule) instead of costing an
    /// exit each. Should the host fail one then, the child is killed
    /// before it runs (`Tag::ForkFailed`). Falls back to `new` when
    /// nothing can be posted.
    fn new_posted(vmid: u64, frames: Frames) -> Result<GuestPmap, Errno> {
        use guestlib::batch::post;
        use vkernel_abi::Call;
        let root = frames.borrow_mut().alloc_zeroed().ok_or(Errno::ENOMEM)?;
        let unmade = Tag::ForkFailed { vmid, made: false }.encode();
        if !post(
            Call::VmspaceCreate {
                id: vmid,
                ty: 0,
                data: 0,
            },
            0,
            unmade,
        ) {
            frames.borrow_mut().decref(root);
            return GuestPmap::new(vmid, frames);
        }
        let made = Tag::ForkFailed { vmid, made: true }.encode();
        let map = user_range_call(vmid);
        let setmap = Call::VmspaceMcontrol {
            id: vmid,
            addr: VM_MIN_USER_ADDRESS,
            len: USER_LEN,
            behav: MADV_SETMAP,
            value: root,
        };
        // The queue had room for the create, but may fill after it; a
        // call that cannot be posted is made at once, which sends the
        // queue first, so the order holds either way.
        let mapped = (post(map, VM_MIN_USER_ADDRESS as i64, made)
            || vms::mmap(
                vmid,
                VM_MIN_USER_ADDRESS,
                USER_LEN,
                PROT_READ | PROT_WRITE | PROT_EXEC,
                MAP_VPAGETABLE | MAP_SHARED | MAP_FIXED,
                PHYSMEM_FD,
                0,
            )
            .is_ok())
            && (post(setmap, 0, made)
                || vms::mcontrol(vmid, VM_MIN_USER_ADDRESS, USER_LEN, MADV_SETMAP, root).is_ok());
        let pmap = GuestPmap {
            vmid,
            root,
            frames,
            made: true,
            sequential_next: 0,
            sequential_window: 0,
            stack_low: 0,
            stack_window: 0,
            fork_hot: Rc::default(),
            parent_hot: None,
        };
        if !mapped {
            // Dropping it destroys the vmspace and frees the root.
            return Err(Errno::ENOMEM);
        }
        Ok(pmap)
    }

    /// Copies between process memory at `addr` and `buf` (`to_process`:
    /// into the process), page by page, faulting pages in as the process
    /// would but ignoring the regions' protections (as ptrace does, and as
    /// the host's pread/pwrite do on the `pmap=host` path); `PROT_NONE`
    /// regions and holes stop it. Returns the bytes copied.
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
            if r.prot == PROT_NONE {
                break;
            }
            // Writing through a shared file mapping changes the file: only
            // where the process may write (a read-only mapping of a file
            // it cannot write must stay so), as Linux's copy_to_user.
            if to_process && r.file().is_some_and(|f| f.shared) && r.prot & PROT_WRITE == 0 {
                break;
            }
            let off = (va & (PAGE_SIZE - 1)) as usize;
            let n = (PAGE_SIZE as usize - off).min(len - done);
            if !to_process && r.file().is_none() && !self.holds(va) {
                // Anonymous memory never touched reads as zeros without
                // a page of its own (Linux maps its zero page).
                // SAFETY: `buf + done .. + n` lies in the caller's buffer.
                unsafe { core::ptr::write_bytes(buf.add(done), 0, n) };
                done += n;
                continue;
            }
            let Ok(page) = self.fault_in(va, r, to_process) else {
                break;
            };
            let pa = (page as usize + off) as *mut u8;
            // SAFETY: `pa..pa + n` lies in one page this space holds; `buf`
            // is the caller's buffer of `len` bytes.
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

impl Drop for GuestPmap {
    fn drop(&mut self) {
        // The tables are freed only once the host follows them no more; a
        // vmspace the host would not destroy keeps them (and its pages).
        // A posted destroy (it goes with the next RUN) frees them now:
        // the host follows a vmspace's tables only while it runs or a
        // call names it, and nothing will before the destroy (posted
        // calls reach the host first); were it to fail all the same, the
        // failure is reported and the dead vmspace never runs.
        let tag = crate::proc::posted::Tag::Destroy { vmid: self.vmid }.encode();
        let posted =
            guestlib::batch::post(vkernel_abi::Call::VmspaceDestroy { id: self.vmid }, 0, tag);
        let pm = &mut *self.frames.borrow_mut();
        pm.release_copies(self.vmid);
        if posted || vms::destroy(self.vmid).is_ok() {
            free_tree(pm, self.root, 4);
        }
    }
}

impl Pmap for GuestPmap {
    fn vmid(&self) -> u64 {
        self.vmid
    }

    fn unmade(&mut self) {
        self.made = false;
    }

    /// Pages are not reserved: they come on first touch (mmap applies
    /// Linux's heuristic overcommit check before this).
    fn map_anon(&mut self, start: u64, end: u64, _prot: u64, _stack: bool) -> Result<(), Errno> {
        self.clear_pages(start, end);
        Ok(())
    }

    fn map_file(&mut self, _: &Regions, start: u64, end: u64) -> Result<(), Errno> {
        self.clear_pages(start, end);
        Ok(())
    }

    fn unmap(&mut self, _: &Regions, start: u64, end: u64) -> Result<(), Errno> {
        self.clear_pages(start, end);
        Ok(())
    }

    fn protect(&mut self, _: &Regions, start: u64, end: u64, prot: u64) -> Result<(), Errno> {
        let mut reduced = false;
        each_leaf(self.root, 4, 0, start, end, &mut |_, slot| {
            let e = read(slot);
            let new = leaf(e & pte::ADDR, prot, e);
            let lost = (e & pte::P != 0 && new & pte::P == 0)
                || (e & pte::RW != 0 && new & pte::RW == 0)
                || (e & pte::NX == 0 && new & pte::NX != 0);
            reduced |= lost;
            write(slot, new);
        });
        if reduced {
            inval(self.vmid, start, end);
        }
        Ok(())
    }

    fn discard(&mut self, start: u64, end: u64) -> Result<(), Errno> {
        self.clear_pages(start, end);
        Ok(())
    }

    fn prefault(
        &mut self,
        regions: &Regions,
        start: u64,
        end: u64,
        write: bool,
    ) -> Result<(), Errno> {
        // A hint: pages come on first touch anyway (no exit but the
        // host's shadow fault). Only a private file mapping about to be
        // written gets its copies now, not a copy-on-write fault (two
        // exits) each: a program's data segment at exec.
        if !write {
            return Ok(());
        }
        for r in regions.pieces(start, end) {
            if r.file().is_none_or(|f| f.shared) || r.prot & PROT_WRITE == 0 {
                continue;
            }
            let mut va = r.start;
            while va < r.end && self.fault_in(va, &r, true).is_ok() {
                va += PAGE_SIZE;
            }
        }
        Ok(())
    }

    fn fault(&mut self, regions: &Regions, addr: u64, error_code: u64) -> Fault {
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
        if !allowed {
            return Fault::Segv;
        }
        let fresh = slot(&mut self.frames.borrow_mut(), self.root, addr, false)
            .ok()
            .flatten()
            .is_none_or(|sl| read(sl) & HELD == 0);
        match self.fault_in(addr, r, write_access) {
            Ok(_) => {}
            Err(PageError::Bus) => return Fault::Bus,
            Err(PageError::NoMem) => return Fault::OutOfMemory,
        }
        match r.backing {
            Backing::Anon { .. } if fresh => self.map_fresh_around(addr, r),
            // A write fault of a private mapping copies one page and maps
            // nothing around it (as Linux): neighbours mapped read-only
            // would each cost a copy-on-write break, with an
            // invalidation, on their own write.
            Backing::File(ref f) if fresh && (f.shared || !write_access) => {
                self.map_file_around(addr, r)
            }
            _ => {}
        }
        Fault::Resolved
    }

    fn read(&mut self, regions: &Regions, addr: u64, buf: &mut [u8]) -> usize {
        self.copy(regions, addr, buf.as_mut_ptr(), buf.len(), false)
    }

    fn write(&mut self, regions: &Regions, addr: u64, buf: &[u8]) -> usize {
        // `copy` only reads through the pointer when copying into the
        // process.
        self.copy(regions, addr, buf.as_ptr() as *mut u8, buf.len(), true)
    }

    /// The child shares every page with this space, copy-on-write, but
    /// for the pages written first thing after fork: the page(s) at the
    /// parent's stack pointer (and its red zone), which both sides write,
    /// and the pages earlier children of this process broke copy-on-write
    /// on ([`ForkHot`]). The child gets its copies of those now (and the
    /// parent keeps its stack page writable), instead of a fault to this
    /// kernel (two exits) and the host's re-shadowing of the page (a
    /// third). Each copy goes in the page the last child had for that
    /// address when that child has ended ([`PhysMem::keep_copy`]), so
    /// the host's shadow of the dead child fits the new one unchanged.
    /// (Copying the pages the parent wrote since its last fork too was
    /// slower: their dirty bits stay set once copied, so they were copied
    /// again at every fork.)
    fn fork(
        &mut self,
        regions: &Regions,
        child: u64,
        stack_va: u64,
    ) -> Result<Box<dyn Pmap>, Errno> {
        let mut c = GuestPmap::new_posted(child, self.frames.clone())?;
        c.parent_hot = Some(self.fork_hot.clone());
        let hot = [
            stack_va.wrapping_sub(128) & !(PAGE_SIZE - 1),
            stack_va & !(PAGE_SIZE - 1),
        ];
        let learned = self.fork_hot.borrow();
        let croot = c.root;
        let owner = self.vmid;
        let mut failed = false;
        // The runs of pages made read-only here, in address order.
        let mut shared_writable = false;
        {
            let pm = &mut *self.frames.borrow_mut();
            each_leaf(
                self.root,
                4,
                0,
                VM_MIN_USER_ADDRESS,
                VM_MAX_USER_ADDRESS,
                &mut |va, pslot| {
                    if failed {
                        return;
                    }
                    let Ok(Some(cslot)) = slot(pm, croot, va, true) else {
                        failed = true;
                        return;
                    };
                    let e = read(pslot);
                    let eager = hot.contains(&va) || learned.contains(va);
                    // Writable, or copy-on-write in a writable region.
                    let writable = e & pte::RW != 0
                        || (e & COW != 0
                            && regions
                                .region_of(va)
                                .is_some_and(|r| r.prot & PROT_WRITE != 0));
                    if eager && writable && e & SHM == 0 {
                        let copy = pm.reuse_copy(owner, va).or_else(|| pm.alloc());
                        if let Some(copy) = copy {
                            let page = e & pte::ADDR;
                            // SAFETY: whole pages of identity-mapped RAM;
                            // `copy` is ours, `page` the parent's.
                            unsafe {
                                core::ptr::copy_nonoverlapping(
                                    page as *const u8,
                                    copy as *mut u8,
                                    PAGE_SIZE as usize,
                                )
                            };
                            // The child's own page, writable and dirty
                            // (the parent's stays as it is, shared or
                            // not): the host's shadow of it is writable
                            // from the start, and a fork's child can run
                            // on the last child's shadow with this page
                            // rewritten (see vmspace's vpt.rs).
                            write(cslot, (e & !(pte::ADDR | COW)) | pte::RW | pte::D | copy);
                            pm.keep_copy(owner, va, copy);
                            return;
                        }
                    }
                    if !pm.incref(e & pte::ADDR) {
                        failed = true;
                        return;
                    }
                    if e & SHM != 0 {
                        // A shared file page: both see every write.
                        write(cslot, e);
                        return;
                    }
                    shared_writable |= e & pte::RW != 0;
                    let shared = (e | COW) & !(pte::RW | pte::D);
                    write(pslot, shared);
                    write(cslot, shared);
                },
            );
        }
        if shared_writable {
            // The whole space, not the runs made read-only: the host
            // takes a new shadow root for it, where a range's unmapping
            // has KVM drop every translation (measured: a fork 17% slower).
            inval_posted(self.vmid, VM_MIN_USER_ADDRESS, VM_MAX_USER_ADDRESS);
        }
        if failed {
            // Dropping the child destroys it and releases what it took.
            return Err(Errno::ENOMEM);
        }
        Ok(Box::new(c))
    }
}
