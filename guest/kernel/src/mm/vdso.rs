//! The vDSO and its data page, mapped into every process at exec (Linux's
//! `[vdso]` and `[vvar]`): the shared object `kernel/build.rs` links from
//! the `vkernel-vdso` crate, copied once into pages of guest RAM, mapped
//! private (read, execute; a debugger's write gets a copy) with the clock
//! page the host keeps mapped read-only in the page below it, where the
//! vDSO's code looks for it.

use alloc::rc::Rc;
use alloc::vec::Vec;

use super::physmem::Frames;
use super::regions::{FileMap, PageError, Pager};
use super::space::{AddressSpace, Mappers};
use vkernel_abi::layout::{CLOCK_PAGE_ADDR, PAGE_SIZE};
use vkernel_abi::mman::{PROT_EXEC, PROT_READ};
use vkernel_abi::Errno;

/// linux-vdso.so.1, as the build script linked it.
static IMAGE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/vdso.so"));

/// The vDSO's pages (held for the kernel's lifetime).
struct Text {
    pages: Vec<u64>,
    mappers: Mappers,
}

/// The clock page, as a one-page object.
struct Vvar {
    mappers: Mappers,
}

impl Pager for Text {
    fn page(&self, index: u64) -> Result<u64, PageError> {
        self.lookup(index).ok_or(PageError::Bus)
    }

    fn lookup(&self, index: u64) -> Option<u64> {
        self.pages.get(usize::try_from(index).ok()?).copied()
    }

    fn size(&self) -> u64 {
        IMAGE.len() as u64
    }

    fn identity(&self) -> (u64, u64, bool) {
        (0, 0, false)
    }

    fn mappers(&self) -> &Mappers {
        &self.mappers
    }
}

impl Pager for Vvar {
    fn page(&self, index: u64) -> Result<u64, PageError> {
        self.lookup(index).ok_or(PageError::Bus)
    }

    fn lookup(&self, index: u64) -> Option<u64> {
        // Outside the kernel's page allocator: never counted, never freed.
        (index == 0).then_some(CLOCK_PAGE_ADDR)
    }

    fn size(&self) -> u64 {
        PAGE_SIZE
    }

    fn identity(&self) -> (u64, u64, bool) {
        (0, 0, false)
    }

    fn mappers(&self) -> &Mappers {
        &self.mappers
    }
}

/// The vDSO, ready to map.
pub struct Vdso {
    text: Rc<dyn Pager>,
    vvar: Rc<dyn Pager>,
    text_bytes: u64,
}

impl Vdso {
    /// Copies the image into pages from `frames`; `None` if there are not
    /// enough (processes then run without a vDSO, as with `vdso=0`).
    pub fn new(frames: &Frames) -> Option<Vdso> {
        let mut pages = Vec::new();
        for chunk in IMAGE.chunks(PAGE_SIZE as usize) {
            let page = frames.borrow_mut().alloc_zeroed()?;
            // SAFETY: a fresh page of identity-mapped RAM the kernel owns.
            let dst = unsafe { core::slice::from_raw_parts_mut(page as *mut u8, chunk.len()) };
            dst.copy_from_slice(chunk);
            pages.push(page);
        }
        let text_bytes = pages.len() as u64 * PAGE_SIZE;
        Some(Vdso {
            text: Rc::new(Text {
                pages,
                mappers: Mappers::default(),
            }),
            vvar: Rc::new(Vvar {
                mappers: Mappers::default(),
            }),
            text_bytes,
        })
    }

    /// Maps `[vvar]` and `[vdso]` into `space` at the highest free range
    /// below `top` (above `floor`); the vDSO's address (AT_SYSINFO_EHDR).
    pub fn map(&self, space: &mut AddressSpace, top: u64, floor: u64) -> Result<u64, Errno> {
        let len = PAGE_SIZE + self.text_bytes;
        let at = space.find_free(top, floor, len).ok_or(Errno::ENOMEM)?;
        let vvar = FileMap {
            object: self.vvar.clone(),
            pgoff: 0,
            // The host's page itself, never a copy; and never writable.
            shared: true,
            may_write: false,
            name: Rc::from(&b"[vvar]"[..]),
        };
        space.map_file(at, PAGE_SIZE, PROT_READ, vvar)?;
        let text = FileMap {
            object: self.text.clone(),
            pgoff: 0,
            shared: false,
            may_write: true,
            name: Rc::from(&b"[vdso]"[..]),
        };
        space.map_file(at + PAGE_SIZE, self.text_bytes, PROT_READ | PROT_EXEC, text)?;
        Ok(at + PAGE_SIZE)
    }
}
