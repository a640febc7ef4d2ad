//! `vmspace_pread` / `vmspace_pwrite`: copies between the guest kernel's
//! buffer (guest-physical, in its RAM) and a vmspace's virtual addresses.
//! Like ptrace, they ignore protections (the kernel loads read-only text
//! this way) and bring pages in on demand; a page with no map entry ends
//! the copy with a short count. In a `MAP_VPAGETABLE` mapping the guest's
//! tables translate (protections ignored), and a page they do not map ends
//! the copy the same way.

use vkernel_abi::layout::PAGE_SIZE;
use vkernel_abi::Errno;
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
        self.copy(id, kbuf, nbyte, off, Direction::Read)
    }

    /// `vmspace_pwrite(id, kbuf, nbyte, off)`: copies `nbyte` bytes from
    /// the kernel's buffer at guest-physical `kbuf` to vmspace address
    /// `off`. Errors and count as [`VmspaceRegistry::pread`].
    pub fn pwrite(&mut self, id: u64, kbuf: u64, nbyte: u64, off: u64) -> Result<usize, Errno> {
        self.copy(id, kbuf, nbyte, off, Direction::Write)
    }

    fn copy(
        &mut self,
        id: u64,
        kbuf: u64,
        nbyte: u64,
        off: u64,
        dir: Direction,
    ) -> Result<usize, Errno> {
        let (space, host) = self.space(id)?;
        host.ram.check(kbuf, nbyte)?;
        if off.checked_add(nbyte).is_none() {
            return Err(Errno::EINVAL);
        }
        // nbyte <= kernel RAM size: the loop is bounded by the buffer.
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
                space.materialize(host, &entry, page)?
            };
            // The frame is the host's (pool or RAM, from the map); the
            // kernel's buffer goes through the checked RAM accessor.
            let bytes = &mut buf[..chunk as usize];
            let at = frame + in_page;
            match dir {
                Direction::Read => {
                    host.mem
                        .read_slice(bytes, GuestAddress(at))
                        .map_err(|source| Error::Memory { gpa: at, source })?;
                    host.ram.write_slice(kbuf + done, bytes)?;
                }
                Direction::Write => {
                    host.ram.read_slice(kbuf + done, bytes)?;
                    host.mem
                        .write_slice(bytes, GuestAddress(at))
                        .map_err(|source| Error::Memory { gpa: at, source })?;
                }
            }
            done += chunk;
        }
        Ok(done as usize)
    }
}
