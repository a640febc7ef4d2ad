//! The kernel's physical page allocator (xv6's kalloc.c, with reference
//! counts for copy-on-write): the pages of `[free_start, mem_bytes)` the
//! host left free at boot, for the guest pmap's page tables and process
//! pages (`pmap=guest`).
//!
//! Pages never handed out are taken in address order (`fresh`), so boot
//! touches none of them (each first touch of guest RAM costs a KVM fault
//! here: threading a list through 15,000 pages at boot took 170 ms).
//! Freed pages form a list threaded through their first word. Each page has
//! a reference count: the number of page-table leaves naming it (a page
//! table page has one, its parent's entry). A page returns to the list when
//! its count drops to zero. The kernel runs identity-mapped, so a page's
//! guest-physical address is also where the kernel reads and writes it.

use vkernel_abi::layout::PAGE_SIZE;

struct Allocator {
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
}

static mut ALLOC: Allocator = Allocator {
    base: 0,
    pages: 0,
    free: 0,
    free_count: 0,
    fresh: 0,
    refs: core::ptr::null_mut(),
};

fn alloc_state() -> &'static mut Allocator {
    // SAFETY: the kernel is single-threaded and never re-enters itself; no
    // caller keeps this reference across another call into this module.
    unsafe { &mut *core::ptr::addr_of_mut!(ALLOC) }
}

/// Takes `[free_start, mem_bytes)`: the reference counts go in its first
/// pages, the rest is handed out. Called once, at boot.
pub fn init(free_start: u64, mem_bytes: u64) {
    let a = alloc_state();
    let start = free_start.next_multiple_of(PAGE_SIZE);
    let end = mem_bytes & !(PAGE_SIZE - 1);
    if end <= start {
        return;
    }
    let total = (end - start) / PAGE_SIZE;
    // Two bytes per page for the counts, rounded up to whole pages.
    let meta_pages = (total * 2).div_ceil(PAGE_SIZE);
    if total <= meta_pages {
        return;
    }
    a.refs = start as *mut u16;
    a.base = start + meta_pages * PAGE_SIZE;
    a.pages = total - meta_pages;
    a.free = 0;
    a.free_count = 0;
    a.fresh = 0;
}

fn index(a: &Allocator, page: u64) -> Option<usize> {
    let off = page.checked_sub(a.base)?;
    (off.is_multiple_of(PAGE_SIZE) && off / PAGE_SIZE < a.pages)
        .then_some((off / PAGE_SIZE) as usize)
}

/// A page with count 1, contents undefined; `None` when memory is out.
pub fn alloc() -> Option<u64> {
    let a = alloc_state();
    let page = if a.free != 0 {
        let page = a.free;
        // SAFETY: `page` is on the free list, so it is ours to read.
        a.free = unsafe { *(page as *const u64) };
        a.free_count -= 1;
        page
    } else if a.fresh < a.pages {
        a.fresh += 1;
        a.base + (a.fresh - 1) * PAGE_SIZE
    } else {
        return None;
    };
    let i = index(a, page)?;
    // SAFETY: `i < pages`: the counts array has that many entries.
    unsafe { *a.refs.add(i) = 1 };
    Some(page)
}

/// A zero-filled page with count 1.
pub fn alloc_zeroed() -> Option<u64> {
    let page = alloc()?;
    // SAFETY: the page was just taken off the free list.
    unsafe { core::ptr::write_bytes(page as *mut u8, 0, PAGE_SIZE as usize) };
    Some(page)
}

/// Adds a reference to an allocated page.
pub fn incref(page: u64) {
    let a = alloc_state();
    if let Some(i) = index(a, page) {
        // SAFETY: `i < pages`.
        unsafe { *a.refs.add(i) += 1 };
    }
}

/// The number of references to `page` (0 for pages not managed here).
pub fn refs(page: u64) -> u16 {
    let a = alloc_state();
    // SAFETY: `i < pages`.
    index(a, page).map_or(0, |i| unsafe { *a.refs.add(i) })
}

/// Drops a reference; the page is free once none is left.
pub fn decref(page: u64) {
    let a = alloc_state();
    let Some(i) = index(a, page) else {
        return;
    };
    // SAFETY: `i < pages`; a page whose count reaches 0 is no longer named
    // by any table, so it can go back on the list.
    unsafe {
        let count = a.refs.add(i);
        debug_assert!(*count > 0, "decref of a free page {page:#x}");
        *count -= 1;
        if *count == 0 {
            *(page as *mut u64) = a.free;
            a.free = page;
            a.free_count += 1;
        }
    }
}

/// Free pages.
pub fn free_pages() -> u64 {
    let a = alloc_state();
    a.free_count + (a.pages - a.fresh)
}

/// Pages managed in all.
pub fn total_pages() -> u64 {
    alloc_state().pages
}
