//! The host pool: a frame allocator over the guest-physical region
//! `[POOL_BASE, POOL_BASE + pool_bytes)` that the guest kernel has no
//! mapping of. It holds every vmspace page-table page and anonymous page,
//! and whatever else the host puts there (its own address space for the
//! guest kernel, the trap area).
//!
//! Allocation and free are O(1) (stacks of free page indices). Pages are
//! zeroed when handed out, except never-used ones, which are still zero.
//!
//! KVM here shadows page tables and never sees the host's writes to them,
//! so a page that served as a page table keeps a shadow in KVM until the
//! host drops KVM's translations. Such a page must not become a page table
//! again before that (KVM would take the stale shadow for the new table),
//! but it may hold data. The pool keeps those pages apart (`stale`), hands
//! them out for data first, and asks for a flush only when a new table finds
//! no other page. That is what lets a vmspace be destroyed without a flush:
//! its root is never loaded again and its tables cannot come back as tables.
//!
//! Vmspaces draw their pages from *reservations* ([`HostPool::reserve`],
//! then [`HostPool::alloc_reserved`]): the page tables an accepted mapping
//! may need are reserved with it, so a table is always there for a page;
//! a private page is reserved when it is touched (see `commit`), which
//! may fail. Unreserved allocations ([`HostPool::alloc_zeroed`]) never eat
//! into what is reserved.

use vkernel_abi::layout::PAGE_SIZE;
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};

use crate::error::Error;

/// Quarantined pages past which a new table recycles them (asking for a
/// flush) rather than taking a never-used page: bounds what the host
/// touches of the pool by what vmspaces hold plus this.
const STALE_LIMIT: usize = 1024;

/// Free pages kept ready (still backed by host memory) before freed pages
/// go back to the host: 16 MiB, so a fork-and-exit loop or a process that
/// maps and unmaps its working set never pays for it.
const KEEP_FREE: usize = 4096;

/// Pages given back to the host at once: the madvise calls come in
/// batches of at least 8 MiB, never on every free.
const RETURN_BATCH: usize = 2048;

/// A page of zeroes, the source for zeroing pool pages.
static ZERO_PAGE: [u8; PAGE_SIZE as usize] = [0; PAGE_SIZE as usize];

/// What a page is wanted for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Use {
    /// A page table (KVM will shadow it).
    Table,
    /// Data: an anonymous page or a private copy.
    Data,
    /// Data the caller overwrites whole: no need to zero it.
    Copy,
}

/// Something page-table code can take page-table pages from.
pub trait FrameAlloc {
    /// A zeroed page, or `None` if there is none.
    fn alloc_frame(&mut self) -> Option<u64>;
    /// Gives back a page obtained from [`FrameAlloc::alloc_frame`].
    fn free_frame(&mut self, gpa: u64);
    /// Whether table page `gpa` may lose a translation in place: true
    /// when KVM cannot have shadowed it, so nothing it cached goes stale.
    /// By default every table may, and whoever edits a tree drops KVM's
    /// translations afterwards (see [`crate::pagetable::Edited`]).
    fn edit_in_place(&self, _gpa: u64) -> bool {
        true
    }
}

/// The frame allocator over the pool region.
#[derive(Debug)]
pub struct HostPool {
    mem: GuestMemoryMmap,
    base: u64,
    total: usize,
    /// Indices of pages freed after use (they hold old contents); the top
    /// is handed out next.
    free: Vec<u32>,
    /// Pages freed after serving as page tables since the last flush of
    /// KVM's translations: data only until the next flush.
    stale: Vec<u32>,
    /// One bit per page: served as a page table since the last flush.
    table_since_flush: Vec<u64>,
    /// A table had to reuse a stale page: KVM's translations must be
    /// dropped before a vmspace runs.
    flush_needed: bool,
    /// Pages given back to the host (`MADV_DONTNEED`): free, zero, and
    /// costing no host memory until touched again.
    returned: Vec<u32>,
    /// Times pages were given back, and how many.
    pub(crate) return_batches: u64,
    pub(crate) returned_total: u64,
    /// Pages at and above this index were never handed out: they are still
    /// as the host's anonymous mapping made them, zero, and need no zeroing
    /// (nor any host memory until first touched).
    fresh: u32,
    /// One bit per page: set while allocated (catches double frees).
    allocated: Vec<u64>,
    /// Free pages promised to vmspaces and not drawn yet.
    reserved: usize,
}

impl HostPool {
    /// A pool over `[base, base + bytes)`, which must be page aligned and
    /// lie wholly in one region of `mem`.
    pub fn new(mem: GuestMemoryMmap, base: u64, bytes: u64) -> Result<Self, Error> {
        if !base.is_multiple_of(PAGE_SIZE) || !bytes.is_multiple_of(PAGE_SIZE) {
            return Err(Error::Layout(format!(
                "pool [{base:#x}, +{bytes:#x}) is not page aligned"
            )));
        }
        let pages = bytes / PAGE_SIZE;
        let total = u32::try_from(pages)
            .map_err(|_| Error::Layout(format!("pool of {pages} pages is too large")))?
            as usize;
        let in_memory = usize::try_from(bytes)
            .ok()
            .is_some_and(|len| len == 0 || mem.get_slice(GuestAddress(base), len).is_ok());
        if !in_memory {
            return Err(Error::Layout(format!(
                "pool [{base:#x}, +{bytes:#x}) is not one region of guest memory"
            )));
        }
        Ok(HostPool {
            mem,
            base,
            total,
            free: Vec::new(),
            stale: Vec::new(),
            returned: Vec::new(),
            return_batches: 0,
            returned_total: 0,
            table_since_flush: vec![0; total.div_ceil(64)],
            flush_needed: false,
            fresh: 0,
            allocated: vec![0; total.div_ceil(64)],
            reserved: 0,
        })
    }

    /// Guest-physical address of the first pool page.
    pub fn base(&self) -> u64 {
        self.base
    }

    /// Number of pages in the pool.
    pub fn total_pages(&self) -> usize {
        self.total
    }

    /// Bytes from the pool's start that were ever handed out: the pages
    /// above were never touched (the host may leave them out of KVM's
    /// memory slots until the pool reaches them).
    pub fn high_water_bytes(&self) -> u64 {
        u64::from(self.fresh) * PAGE_SIZE
    }

    /// Number of pages handed out and not freed.
    pub fn pages_in_use(&self) -> usize {
        self.fresh as usize - self.free.len() - self.stale.len() - self.returned.len()
    }

    /// Free pages given back to the host (no host memory behind them).
    pub fn returned_pages(&self) -> usize {
        self.returned.len()
    }

    /// `(batches, pages)` given back to the host so far.
    pub fn return_stats(&self) -> (u64, u64) {
        (self.return_batches, self.returned_total)
    }

    /// Number of free pages (reserved ones included).
    pub fn free_pages(&self) -> usize {
        self.total - self.pages_in_use()
    }

    /// Number of free pages promised to vmspaces.
    pub fn reserved_pages(&self) -> usize {
        self.reserved
    }

    /// Free pages nobody has reserved.
    pub fn available_pages(&self) -> usize {
        self.free_pages().saturating_sub(self.reserved)
    }

    /// Whether `gpa` is a page of this pool.
    pub fn contains(&self, gpa: u64) -> bool {
        self.index(gpa).is_some()
    }

    /// A zeroed page that nobody reserved, or `None` if every free page is
    /// taken or promised.
    pub fn alloc_zeroed(&mut self) -> Option<u64> {
        if self.available_pages() == 0 {
            return None;
        }
        self.pop_zeroed(Use::Table)
    }

    /// Gives a page back. Freeing a page twice, or one outside the pool, is
    /// a host bug: it asserts in debug builds and is ignored otherwise.
    pub fn free(&mut self, gpa: u64) {
        let Some(index) = self.index(gpa) else {
            debug_assert!(false, "freeing {gpa:#x}, which is not a pool page");
            log::error!("host pool: freeing {gpa:#x}, which is not a pool page; ignored");
            return;
        };
        let (word, bit) = (index as usize / 64, index % 64);
        if self.allocated[word] & (1 << bit) == 0 {
            debug_assert!(false, "double free of pool page {gpa:#x}");
            log::error!("host pool: double free of {gpa:#x}; ignored");
            return;
        }
        self.allocated[word] &= !(1 << bit);
        if self.table_since_flush[word] & (1 << bit) != 0 {
            self.stale.push(index);
        } else {
            self.free.push(index);
            self.return_surplus();
        }
    }

    /// Gives the host back the free pages beyond [`KEEP_FREE`], once they
    /// are [`RETURN_BATCH`] more: the oldest freed (the bottom of the
    /// stack), as runs of consecutive pages, with `MADV_DONTNEED` on the
    /// pool's private anonymous mapping, after which they read as zero and
    /// hold no host memory (KVM drops its mappings of them through its MMU
    /// notifier). Without this, memory a guest once touched stayed with
    /// the host for the whole run (a process that touched 800 MiB and
    /// unmapped it left the host at 832 MB RSS). Stale pages are not
    /// returned: they wait for a flush and are bounded by `STALE_LIMIT`.
    fn return_surplus(&mut self) {
        if self.free.len() < KEEP_FREE + RETURN_BATCH {
            return;
        }
        let n = self.free.len() - KEEP_FREE;
        let mut gone: Vec<u32> = self.free.drain(..n).collect();
        gone.sort_unstable();
        let mut kept = Vec::new();
        let mut i = 0;
        while i < gone.len() {
            let mut j = i + 1;
            while j < gone.len() && gone[j] == gone[j - 1] + 1 {
                j += 1;
            }
            if self.discard(gone[i], j - i) {
                self.returned.extend_from_slice(&gone[i..j]);
            } else {
                kept.extend_from_slice(&gone[i..j]);
            }
            i = j;
        }
        self.return_batches += 1;
        self.returned_total += (gone.len() - kept.len()) as u64;
        // Not given back (cannot happen short of a kernel refusing
        // madvise): they stay free, with their contents.
        self.free.extend(kept);
    }

    /// `MADV_DONTNEED` on `pages` pool pages from index `first`.
    fn discard(&self, first: u32, pages: usize) -> bool {
        let gpa = self.base + u64::from(first) * PAGE_SIZE;
        let len = pages * PAGE_SIZE as usize;
        // The pool lies in one region of `mem` (checked in `new`), so the
        // host address of its first page covers the whole run.
        let Ok(host) = self.mem.get_host_address(GuestAddress(gpa)) else {
            return false;
        };
        // SAFETY: the range is pool memory of a live private anonymous
        // mapping owned by `mem`, page aligned; it holds only free pages,
        // which nobody reads until they are handed out again, and then as
        // zero, which is what MADV_DONTNEED makes them.
        let r = unsafe { libc::madvise(host.cast(), len, libc::MADV_DONTNEED) };
        if r != 0 {
            log::warn!(
                "host pool: madvise(MADV_DONTNEED) of {pages} pages at {gpa:#x}: {}",
                std::io::Error::last_os_error()
            );
        }
        r == 0
    }

    /// Backs pool pages `gpas` (any order; sorted here) with host memory
    /// now, with one `MADV_POPULATE_WRITE` per run of consecutive pages.
    ///
    /// Why: a page handed out fresh or after being given back has no host
    /// memory yet. Left alone, the vCPU's first access to it makes KVM fault
    /// it in through the slow `get_user_pages` path, one 4 KiB host fault
    /// per page, and KVM's shadow MMU cannot prefetch a neighbour whose
    /// host page is absent (its prefetch only takes pages already present),
    /// so each page also costs its own shadow fault. Populated together,
    /// the host faults come in one call and one shadow fault maps the
    /// group of eight entries around it. Pages already backed cost a table
    /// walk. Failure (a kernel before 5.14 has no `MADV_POPULATE_WRITE`, or
    /// host memory is short) is harmless: the pages are then backed on
    /// first access, as before.
    pub fn populate(&self, gpas: &mut [u64]) {
        gpas.sort_unstable();
        let mut i = 0;
        while i < gpas.len() {
            let mut j = i + 1;
            while j < gpas.len() && gpas[j] == gpas[j - 1] + PAGE_SIZE {
                j += 1;
            }
            let (first, pages) = (gpas[i], j - i);
            i = j;
            if self.index(first).is_none()
                || self.index(first + (pages as u64 - 1) * PAGE_SIZE).is_none()
            {
                continue;
            }
            // The pool lies in one region of `mem` (checked in `new`).
            let Ok(host) = self.mem.get_host_address(GuestAddress(first)) else {
                continue;
            };
            // SAFETY: the run is pool memory of a live private anonymous
            // mapping owned by `mem`, page aligned; populating writes
            // nothing to it (a page already present is left as it is, an
            // absent one becomes a zero page, which is what it reads as).
            let r = unsafe {
                libc::madvise(
                    host.cast(),
                    pages * PAGE_SIZE as usize,
                    libc::MADV_POPULATE_WRITE,
                )
            };
            if r != 0 {
                log::debug!(
                    "host pool: madvise(MADV_POPULATE_WRITE) of {pages} pages at {first:#x}: {}",
                    std::io::Error::last_os_error()
                );
            }
        }
    }

    /// KVM's translations were dropped: every stale page may be a table again.
    pub fn flushed(&mut self) {
        self.release_stale();
        self.flush_needed = false;
    }

    /// Stale pages become clean. A page still allocated keeps its mark:
    /// a live table goes on serving as one after the flush, so KVM shadows
    /// it again and it must be quarantined when freed. (Clearing every
    /// mark here let a live root freed after a flush come straight back as
    /// another vmspace's root, and KVM ran the new vmspace on the old
    /// one's cached translations: found with `pmap=guest`.)
    fn release_stale(&mut self) {
        self.free.append(&mut self.stale);
        for (table, allocated) in self.table_since_flush.iter_mut().zip(&self.allocated) {
            *table &= *allocated;
        }
        self.return_surplus();
    }

    /// Whether a table reused a stale page since the last [`HostPool::flushed`].
    pub fn flush_needed(&self) -> bool {
        self.flush_needed
    }

    /// Promises `pages` free pages to the caller; `false` (and nothing
    /// reserved) if fewer than that are available.
    pub fn reserve(&mut self, pages: usize) -> bool {
        if pages > self.available_pages() {
            return false;
        }
        self.reserved += pages;
        true
    }

    /// Takes back a promise of `pages` pages made by [`HostPool::reserve`].
    pub fn unreserve(&mut self, pages: usize) {
        debug_assert!(pages <= self.reserved, "unreserving more than reserved");
        self.reserved = self.reserved.saturating_sub(pages);
    }

    /// A zeroed page drawn from the reservation. `None` only if nothing is
    /// reserved, which is a host accounting bug.
    pub fn alloc_reserved(&mut self) -> Option<u64> {
        self.alloc_reserved_for(Use::Data)
    }

    /// A page drawn from the reservation that the caller overwrites whole
    /// at once (a copy): not zeroed.
    pub fn alloc_reserved_for_copy(&mut self) -> Option<u64> {
        self.alloc_reserved_for(Use::Copy)
    }

    fn alloc_reserved_for(&mut self, use_: Use) -> Option<u64> {
        if self.reserved == 0 {
            debug_assert!(false, "drawing from an empty reservation");
            return None;
        }
        let gpa = self.pop_zeroed(use_)?;
        self.reserved -= 1;
        Some(gpa)
    }

    /// Frees a table page that KVM never shadowed (no vCPU ran on a tree
    /// holding it since it was handed out) into the reservation, as
    /// [`HostPool::free_into_reserve`] but without the quarantine: KVM has
    /// nothing cached for it, so it may become a table again at once.
    pub fn free_unshadowed_into_reserve(&mut self, gpa: u64) {
        if let Some(index) = self.index(gpa) {
            let (word, bit) = (index as usize / 64, index % 64);
            // Only a page handed out since the last flush can be unshadowed
            // (a freed table waits for one): its mark is this life's.
            if self.allocated[word] & (1 << bit) != 0 {
                self.table_since_flush[word] &= !(1 << bit);
            }
        }
        self.free_into_reserve(gpa);
    }

    /// Frees a page drawn with [`HostPool::alloc_reserved`] and keeps it
    /// reserved (the charge for it stays with its owner).
    pub fn free_into_reserve(&mut self, gpa: u64) {
        let before = self.pages_in_use();
        self.free(gpa);
        if self.pages_in_use() < before {
            self.reserved += 1;
        }
    }

    /// The allocator that draws from the reservation, for page tables of
    /// vmspaces.
    pub fn charged(&mut self) -> Charged<'_> {
        Charged(self)
    }

    fn index(&self, gpa: u64) -> Option<u32> {
        let offset = gpa.checked_sub(self.base)?;
        if offset % PAGE_SIZE != 0 || offset / PAGE_SIZE >= self.total as u64 {
            return None;
        }
        Some((offset / PAGE_SIZE) as u32)
    }

    fn pop_zeroed(&mut self, use_: Use) -> Option<u64> {
        // Data takes stale pages first, keeping clean ones for tables. A
        // table takes a clean page; if none is left it takes a stale one,
        // and all stale pages become clean once KVM's translations are
        // dropped, which the caller must do before any vmspace runs. It
        // does so before the pool runs dry when the quarantine has grown
        // past STALE_LIMIT: with nothing else flushing (destroy and a
        // whole-space INVAL do not), tables would otherwise walk through
        // every never-used page, and the host's memory up to the pool's
        // size (a fork loop reached 680 MB for a 53-page working set).
        let recycled = match use_ {
            Use::Data | Use::Copy => self.stale.pop().or_else(|| self.free.pop()),
            Use::Table => self.free.pop(),
        };
        let pool_dry = (self.fresh as usize) >= self.total;
        let recycled = match recycled {
            None if use_ == Use::Table
                && !self.stale.is_empty()
                && (pool_dry || self.stale.len() >= STALE_LIMIT) =>
            {
                self.flush_needed = true;
                self.release_stale();
                self.free.pop()
            }
            other => other,
        };
        let index = match recycled {
            Some(index) if use_ == Use::Copy => index,
            Some(index) => {
                let gpa = self.base + u64::from(index) * PAGE_SIZE;
                if let Err(e) = self.mem.write_slice(&ZERO_PAGE, GuestAddress(gpa)) {
                    // Cannot happen: the range was checked in `new`.
                    log::error!("host pool: cannot zero {gpa:#x}: {e}");
                    self.free.push(index);
                    return None;
                }
                index
            }
            // Given back to the host: zero already.
            None if !self.returned.is_empty() => self.returned.pop()?,
            None if (self.fresh as usize) < self.total => {
                self.fresh += 1;
                self.fresh - 1
            }
            None => return None,
        };
        let gpa = self.base + u64::from(index) * PAGE_SIZE;
        self.allocated[index as usize / 64] |= 1 << (index % 64);
        if use_ == Use::Table {
            self.table_since_flush[index as usize / 64] |= 1 << (index % 64);
        }
        Some(gpa)
    }
}

impl FrameAlloc for HostPool {
    fn alloc_frame(&mut self) -> Option<u64> {
        self.alloc_zeroed()
    }

    fn free_frame(&mut self, gpa: u64) {
        self.free(gpa);
    }
}

/// The pool seen through a vmspace's reservation: pages come from what was
/// reserved and go back into it.
#[derive(Debug)]
pub struct Charged<'a>(&'a mut HostPool);

impl FrameAlloc for Charged<'_> {
    fn alloc_frame(&mut self) -> Option<u64> {
        self.0.alloc_reserved_for(Use::Table)
    }

    fn free_frame(&mut self, gpa: u64) {
        self.0.free_into_reserve(gpa);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vkernel_abi::layout::POOL_BASE;

    fn pool(pages: u64) -> (GuestMemoryMmap, HostPool) {
        let mem = GuestMemoryMmap::from_ranges(&[
            (GuestAddress(0), 0x10000),
            (GuestAddress(POOL_BASE), (pages * PAGE_SIZE) as usize),
        ])
        .unwrap();
        let pool = HostPool::new(mem.clone(), POOL_BASE, pages * PAGE_SIZE).unwrap();
        (mem, pool)
    }

    /// Whether the host backs pool page `gpa` with memory now.
    fn resident(mem: &GuestMemoryMmap, gpa: u64) -> bool {
        let host = mem.get_host_address(GuestAddress(gpa)).unwrap();
        let mut v = [0u8; 1];
        // SAFETY: one page of a live mapping; `v` has a byte for it.
        let r = unsafe { libc::mincore(host.cast(), PAGE_SIZE as usize, v.as_mut_ptr()) };
        assert_eq!(r, 0);
        v[0] & 1 != 0
    }

    #[test]
    fn freed_pages_beyond_a_cushion_go_back_to_the_host_in_batches() {
        let n = KEEP_FREE + RETURN_BATCH + 100;
        let (mem, mut p) = pool(n as u64 + 8);
        // Data pages (tables would wait in the quarantine instead).
        assert!(p.reserve(n));
        let pages: Vec<u64> = (0..n).map(|_| p.alloc_reserved().unwrap()).collect();
        for &g in &pages {
            mem.write_obj(0xabu8, GuestAddress(g)).unwrap();
        }
        assert!(pages.iter().all(|&g| resident(&mem, g)));
        // Frees up to the cushion plus one batch keep their memory.
        for &g in &pages[..KEEP_FREE + RETURN_BATCH - 1] {
            p.free(g);
        }
        assert_eq!((p.returned_pages(), p.return_stats()), (0, (0, 0)));
        // The next free returns a batch: the oldest freed pages.
        p.free(pages[KEEP_FREE + RETURN_BATCH - 1]);
        assert_eq!(p.returned_pages(), RETURN_BATCH);
        assert_eq!(p.return_stats(), (1, RETURN_BATCH as u64));
        assert!(pages[..RETURN_BATCH].iter().all(|&g| !resident(&mem, g)));
        assert!(pages[RETURN_BATCH..].iter().all(|&g| resident(&mem, g)));
        assert_eq!(p.pages_in_use(), 100);
        // Free pages with their memory are used first; returned ones come
        // back zero, without the pool writing them.
        for &g in &pages[KEEP_FREE + RETURN_BATCH..] {
            p.free(g);
        }
        assert!(p.reserve(KEEP_FREE + 101));
        let again: Vec<u64> = (0..KEEP_FREE + 101)
            .map(|_| p.alloc_reserved().unwrap())
            .collect();
        let from_host = *again.last().unwrap();
        assert!(pages[..RETURN_BATCH].contains(&from_host));
        assert_eq!(mem.read_obj::<u8>(GuestAddress(from_host)).unwrap(), 0);
        assert_eq!(p.returned_pages(), RETURN_BATCH - 1);
        assert_eq!(p.pages_in_use(), KEEP_FREE + 101);
    }

    #[test]
    fn populate_backs_fresh_pages_in_runs_and_keeps_contents() {
        let (mem, mut p) = pool(64);
        assert!(p.reserve(40));
        let pages: Vec<u64> = (0..40).map(|_| p.alloc_reserved().unwrap()).collect();
        assert!(pages.iter().all(|&g| !resident(&mem, g)));
        mem.write_obj(0x5au8, GuestAddress(pages[3])).unwrap();
        // Two runs, given out of order, and one page outside the pool
        // (ignored).
        let mut wanted: Vec<u64> = pages[20..30].iter().rev().copied().collect();
        wanted.extend_from_slice(&pages[..5]);
        wanted.push(POOL_BASE + 64 * PAGE_SIZE);
        p.populate(&mut wanted);
        assert!(pages[..5].iter().all(|&g| resident(&mem, g)));
        assert!(pages[20..30].iter().all(|&g| resident(&mem, g)));
        assert!(pages[5..20].iter().all(|&g| !resident(&mem, g)));
        assert!(pages[30..].iter().all(|&g| !resident(&mem, g)));
        // Populating writes nothing: a page's contents stay, the others
        // read as zero.
        assert_eq!(mem.read_obj::<u8>(GuestAddress(pages[3])).unwrap(), 0x5a);
        assert_eq!(mem.read_obj::<u8>(GuestAddress(pages[21])).unwrap(), 0);
    }

    #[test]
    fn allocates_every_page_once_then_fails() {
        let (_, mut p) = pool(8);
        let mut got: Vec<u64> = (0..8).map(|_| p.alloc_zeroed().unwrap()).collect();
        assert_eq!(p.alloc_zeroed(), None);
        assert_eq!(p.pages_in_use(), 8);
        got.sort();
        got.dedup();
        assert_eq!(got.len(), 8);
        assert!(got.iter().all(|&g| p.contains(g)));
        for g in got {
            p.free(g);
        }
        assert_eq!(p.pages_in_use(), 0);
    }

    #[test]
    fn a_freed_table_page_is_data_only_until_a_flush() {
        let (mem, mut p) = pool(2);
        assert!(p.reserve(2));
        let mut charged = p.charged();
        let table = charged.alloc_frame().unwrap();
        charged.free_frame(table);
        // Data may take it at once (and gets it zeroed)...
        mem.write_slice(&[0xaa; 8], GuestAddress(table)).unwrap();
        let data = p.alloc_reserved().unwrap();
        assert_eq!(data, table);
        assert_eq!(mem.read_obj::<u64>(GuestAddress(data)).unwrap(), 0);
        p.free_into_reserve(data);
        // ...a table takes another page while one is clean.
        let t2 = p.charged().alloc_frame().unwrap();
        assert_ne!(t2, table);
        assert!(!p.flush_needed());
        // With no clean page left, a table reuses the stale one and a flush
        // is asked for.
        let t3 = p.charged().alloc_frame().unwrap();
        assert_eq!(t3, table);
        assert!(p.flush_needed());
        p.flushed();
        assert!(!p.flush_needed());
    }

    #[test]
    fn a_table_live_across_a_flush_is_quarantined_when_freed() {
        let (_, mut p) = pool(2);
        assert!(p.reserve(2));
        let root = p.charged().alloc_frame().unwrap();
        // KVM drops its translations while the table lives, then shadows
        // it again: once freed, it must not be a table before the next
        // flush.
        p.flushed();
        p.charged().free_frame(root);
        let next = p.charged().alloc_frame().unwrap();
        assert_ne!(next, root);
        assert!(!p.flush_needed());
    }

    #[test]
    fn a_long_quarantine_is_recycled_before_new_pages_are_touched() {
        let pages = STALE_LIMIT as u64 + 8;
        let (_, mut p) = pool(pages);
        assert!(p.reserve(pages as usize));
        let tables: Vec<u64> = (0..STALE_LIMIT)
            .map(|_| p.charged().alloc_frame().unwrap())
            .collect();
        for &t in &tables {
            p.charged().free_frame(t);
        }
        // Never-used pages are left, but the quarantine is full: the next
        // table is a recycled page, and a flush is asked for.
        let next = p.charged().alloc_frame().unwrap();
        assert!(tables.contains(&next));
        assert!(p.flush_needed());
    }

    #[test]
    fn pages_are_zeroed_on_allocation() {
        let (mem, mut p) = pool(1);
        let g = p.alloc_zeroed().unwrap();
        mem.write_slice(&[0xaa; 4096], GuestAddress(g)).unwrap();
        p.free(g);
        let g2 = p.alloc_zeroed().unwrap();
        assert_eq!(g, g2);
        let mut buf = [1u8; 4096];
        mem.read_slice(&mut buf, GuestAddress(g2)).unwrap();
        assert!(buf.iter().all(|&b| b == 0));
    }

    #[test]
    fn reservation_is_kept_from_unreserved_allocations() {
        let (_, mut p) = pool(4);
        assert!(p.reserve(3));
        assert!(!p.reserve(2));
        assert_eq!(p.available_pages(), 1);
        let a = p.alloc_zeroed().unwrap();
        assert_eq!(p.alloc_zeroed(), None);
        let r = p.alloc_reserved().unwrap();
        assert_eq!(p.reserved_pages(), 2);
        p.free_into_reserve(r);
        assert_eq!(p.reserved_pages(), 3);
        p.unreserve(3);
        p.free(a);
        assert_eq!((p.pages_in_use(), p.reserved_pages()), (0, 0));
    }

    #[test]
    fn rejects_a_pool_outside_memory() {
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x10000)]).unwrap();
        assert!(HostPool::new(mem.clone(), POOL_BASE, 4096).is_err());
        assert!(HostPool::new(mem, 0x800, 4096).is_err());
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "double free")]
    fn double_free_asserts_in_debug() {
        let (_, mut p) = pool(2);
        let g = p.alloc_zeroed().unwrap();
        p.free(g);
        p.free(g);
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "not a pool page")]
    fn foreign_free_asserts_in_debug() {
        let (_, mut p) = pool(2);
        p.free(0x1000);
    }
}
