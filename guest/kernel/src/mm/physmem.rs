//! The kernel's physical page allocator (xv6's kalloc.c, with reference
//! counts for copy-on-write): the pages of `[free_start, mem_bytes)` the
//! host left free at boot, for the guest pmap's page tables and process
//! pages (`pmap=guest`), and later the file systems' pages.
//!
//! Pages never handed out are taken in address order (`fresh`), so boot
//! touches none of them (each first touch of guest RAM costs a KVM fault
//! here: threading a list through 15,000 pages at boot took 170 ms).
//! Freed pages form a list threaded through their first word. Each page has
//! a reference count: the number of page-table leaves naming it (a page
//! table page has one, its parent's entry). A page returns to the list when
//! its count drops to zero. The kernel runs identity-mapped, so a page's
//! guest-physical address is also where the kernel reads and writes it.

use alloc::rc::Weak;
use alloc::vec::Vec;

use vkernel_abi::layout::PAGE_SIZE;

/// A cache whose clean pages can be given back when memory runs out
/// (Linux's shrinkers): the host file systems' page caches.
pub trait Reclaim {
    /// Drops up to `want` pages only the cache holds (count 1), with
    /// `mem.decref`; how many it dropped.
    fn reclaim(&self, mem: &mut PhysMem, want: u64) -> u64;
}

/// Pages asked of the caches at once when memory runs out.
const RECLAIM_BATCH: u64 = 64;

/// Most copies kept for forks' next children (see [`PhysMem::keep_copy`]).
const KEPT_COPIES: usize = 64;

/// The page allocator. One exists, owned by [`super::Mm`] and shared (as
/// [`Frames`]) by every guest pmap.
pub struct PhysMem {
    /// First page managed (page aligned).
    base: u64,
    /// Pages managed, `[base, base + pages * PAGE_SIZE)`.
    pages: u64,
    /// Head of the free list (0: empty).
    free: u64,
    /// Free pages on the list.
    free_count: u64,
    /// Pages below this index have been handed out at least once.
    fresh: u64,
    /// `pages` counters, in the first pages of the free range.
    refs: *mut u16,
    /// Caches asked for pages when none is free.
    reclaimers: Vec<Weak<dyn Reclaim>>,
    /// Pages the file caches hold (clean, reclaimable while unmapped):
    /// `Cached` in `/proc/meminfo`. The caches keep it.
    pub cache_pages: u64,
    /// (owner, address, page): copies a fork gave a child, held by one
    /// more reference each (see [`PhysMem::keep_copy`]), oldest first.
    kept: [(u64, u64, u64); KEPT_COPIES],
    kept_len: usize,
}

/// The allocator as the pmaps hold it: one kernel, one vCPU, so a
/// `RefCell` (borrowed only inside one call of this module) is enough.
pub type Frames = alloc::rc::Rc<core::cell::RefCell<PhysMem>>;

impl PhysMem {
    /// Takes `[start, end)`: the reference counts go in its first pages,
    /// the rest is handed out. An empty or tiny range manages no page.
    pub fn new(start: u64, end: u64) -> PhysMem {
        let mut a = PhysMem {
            base: 0,
            pages: 0,
            free: 0,
            free_count: 0,
            fresh: 0,
            refs: core::ptr::null_mut(),
            reclaimers: Vec::new(),
            cache_pages: 0,
            kept: [(0, 0, 0); KEPT_COPIES],
            kept_len: 0,
        };
        let start = start.next_multiple_of(PAGE_SIZE);
        let end = end & !(PAGE_SIZE - 1);
        if end <= start {
            return a;
        }
        let total = (end - start) / PAGE_SIZE;
        // Two bytes per page for the counts, rounded up to whole pages.
        let meta_pages = (total * 2).div_ceil(PAGE_SIZE);
        if total <= meta_pages {
            return a;
        }
        a.refs = start as *mut u16;
        a.base = start + meta_pages * PAGE_SIZE;
        a.pages = total - meta_pages;
        a
    }

    fn index(&self, page: u64) -> Option<usize> {
        let off = page.checked_sub(self.base)?;
        (off.is_multiple_of(PAGE_SIZE) && off / PAGE_SIZE < self.pages)
            .then_some((off / PAGE_SIZE) as usize)
    }

    /// Asks `cache` for pages when memory runs out.
    pub fn add_reclaimer(&mut self, cache: Weak<dyn Reclaim>) {
        self.reclaimers.retain(|r| r.strong_count() > 0);
        self.reclaimers.push(cache);
    }

    /// A page with count 1, contents undefined; `None` when memory is out
    /// even after the caches gave back what they could.
    pub fn alloc(&mut self) -> Option<u64> {
        if self.free == 0 && self.fresh >= self.pages {
            self.drop_idle_copies();
        }
        if self.free == 0 && self.fresh >= self.pages && !self.reclaimers.is_empty() {
            let caches = core::mem::take(&mut self.reclaimers);
            for cache in caches.iter().filter_map(Weak::upgrade) {
                if cache.reclaim(self, RECLAIM_BATCH) > 0 {
                    break;
                }
            }
            self.reclaimers = caches;
        }
        let page = if self.free != 0 {
            let page = self.free;
            // SAFETY: `page` is on the free list, so it is ours to read.
            self.free = unsafe { *(page as *const u64) };
            self.free_count -= 1;
            page
        } else if self.fresh < self.pages {
            self.fresh += 1;
            self.base + (self.fresh - 1) * PAGE_SIZE
        } else {
            return None;
        };
        let i = self.index(page)?;
        // SAFETY: `i < pages`: the counts array has that many entries.
        unsafe { *self.refs.add(i) = 1 };
        Some(page)
    }

    /// A zero-filled page with count 1.
    pub fn alloc_zeroed(&mut self) -> Option<u64> {
        let page = self.alloc()?;
        // SAFETY: the page was just taken off the free list.
        unsafe { core::ptr::write_bytes(page as *mut u8, 0, PAGE_SIZE as usize) };
        Some(page)
    }

    /// Adds a reference to an allocated page; false (nothing changed)
    /// when its count is full: a count that wrapped would free a page
    /// still mapped, so the caller refuses the mapping instead.
    #[must_use]
    pub fn incref(&mut self, page: u64) -> bool {
        let Some(i) = self.index(page) else {
            return true;
        };
        // SAFETY: `i < pages`.
        unsafe {
            let count = self.refs.add(i);
            if *count == u16::MAX {
                return false;
            }
            *count += 1;
        }
        true
    }

    /// The number of references to `page` (0 for pages not managed here).
    pub fn refs(&self, page: u64) -> u16 {
        // SAFETY: `i < pages`.
        self.index(page).map_or(0, |i| unsafe { *self.refs.add(i) })
    }

    /// Drops a reference; the page is free once none is left.
    pub fn decref(&mut self, page: u64) {
        let Some(i) = self.index(page) else {
            return;
        };
        // SAFETY: `i < pages`; a page whose count reaches 0 is no longer
        // named by any table, so it can go back on the list.
        unsafe {
            let count = self.refs.add(i);
            debug_assert!(*count > 0, "decref of a free page {page:#x}");
            *count -= 1;
            if *count == 0 {
                // A posted pwrite may still name the page (a tmpfs read's
                // bytes, `syscall::uio::ToUser`): it reaches the host
                // before the page changes.
                if guestlib::batch::reads_memory() {
                    guestlib::batch::flush();
                }
                *(page as *mut u64) = self.free;
                self.free = page;
                self.free_count += 1;
            }
        }
    }

    /// Free pages, the kept copies nobody else holds included (an
    /// allocation takes them back before it fails).
    pub fn free_pages(&self) -> u64 {
        self.free_count + (self.pages - self.fresh) + self.idle_copies()
    }

    /// Keeps a reference to `page`, the copy of `owner`'s page at `va` a
    /// fork gave a child, so that once that child has ended the owner's
    /// next fork puts the next child's copy in the same page
    /// ([`PhysMem::reuse_copy`]), in place of the oldest kept when full.
    ///
    /// Why: the host gives a fork's child the dead child's shadow of its
    /// tables (vmspace's `vpt::adopt_spare_shadow`); a leaf naming another
    /// page there is rewritten in a copy of its page table, which KVM then
    /// shadows anew: every page the child touched in that table (a static
    /// program's whole text and data) cost a shadow fault in KVM, a third
    /// of a glibc fork cycle's time.
    pub fn keep_copy(&mut self, owner: u64, va: u64, page: u64) {
        if !self.incref(page) {
            return;
        }
        if self.kept_len == KEPT_COPIES {
            self.decref(self.kept[0].2);
            self.kept.copy_within(1.., 0);
            self.kept_len -= 1;
        }
        self.kept[self.kept_len] = (owner, va, page);
        self.kept_len += 1;
    }

    /// The page kept for `owner`'s `va` that nobody else holds any more
    /// (its child ended), with its reference: the caller's now.
    pub fn reuse_copy(&mut self, owner: u64, va: u64) -> Option<u64> {
        let i = self.kept[..self.kept_len]
            .iter()
            .position(|&(o, at, page)| o == owner && at == va && self.refs(page) == 1)?;
        let page = self.kept[i].2;
        self.kept.copy_within(i + 1..self.kept_len, i);
        self.kept_len -= 1;
        Some(page)
    }

    /// Lets go of every copy kept for `owner` (it ends or execs).
    pub fn release_copies(&mut self, owner: u64) {
        self.drop_copies(|o, _| o == owner);
    }

    /// Kept copies nobody else holds.
    fn idle_copies(&self) -> u64 {
        self.kept[..self.kept_len]
            .iter()
            .filter(|&&(_, _, page)| self.refs(page) == 1)
            .count() as u64
    }

    fn drop_idle_copies(&mut self) {
        self.drop_copies(|_, refs| refs == 1);
    }

    /// Drops the kept copies `f(owner, references)` picks.
    fn drop_copies(&mut self, f: impl Fn(u64, u16) -> bool) {
        let mut kept = 0;
        for i in 0..self.kept_len {
            let (owner, _, page) = self.kept[i];
            if f(owner, self.refs(page)) {
                self.decref(page);
            } else {
                self.kept[kept] = self.kept[i];
                kept += 1;
            }
        }
        self.kept_len = kept;
    }

    /// Pages managed in all.
    pub fn total_pages(&self) -> u64 {
        self.pages
    }
}
