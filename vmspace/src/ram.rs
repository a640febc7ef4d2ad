//! The guest kernel's RAM, `[0, len)` guest-physical: the one checked way
//! the host touches memory at an address the guest kernel gave it (Solo5's
//! `HVT_CHECKED_GPA_P`). Every access is bounds-checked against RAM, not
//! against all guest memory, so a guest address can never reach the host
//! pool above it (page tables, other processes' pages, the trap area), and
//! an address that wraps or runs past the end is `EFAULT`, never a panic.

use vkernel_abi::{Errno, Pod};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

/// Guest-kernel RAM: all guest memory plus where RAM ends.
#[derive(Clone, Debug)]
pub struct KernelRam {
    mem: GuestMemoryMmap,
    len: u64,
}

impl KernelRam {
    /// RAM is `[0, len)` of `mem`.
    pub fn new(mem: GuestMemoryMmap, len: u64) -> Self {
        KernelRam { mem, len }
    }

    /// RAM size in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether RAM is empty (never, for a running guest).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// All guest memory, RAM and pool: for the host's own addresses only.
    pub fn memory(&self) -> &GuestMemoryMmap {
        &self.mem
    }

    /// Whether `[gpa, gpa + len)` lies wholly in RAM (false if it wraps).
    pub fn contains(&self, gpa: u64, len: u64) -> bool {
        gpa.checked_add(len).is_some_and(|end| end <= self.len)
    }

    /// `Ok` if `[gpa, gpa + len)` lies wholly in RAM, else `EFAULT`.
    pub fn check(&self, gpa: u64, len: u64) -> Result<(), Errno> {
        if self.contains(gpa, len) {
            Ok(())
        } else {
            Err(Errno::EFAULT)
        }
    }

    /// Fills `buf` from RAM at `gpa`.
    pub fn read_slice(&self, gpa: u64, buf: &mut [u8]) -> Result<(), Errno> {
        self.check(gpa, buf.len() as u64)?;
        self.mem
            .read_slice(buf, GuestAddress(gpa))
            .map_err(|_| Errno::EFAULT)
    }

    /// Copies `buf` into RAM at `gpa`.
    pub fn write_slice(&self, gpa: u64, buf: &[u8]) -> Result<(), Errno> {
        self.check(gpa, buf.len() as u64)?;
        self.mem
            .write_slice(buf, GuestAddress(gpa))
            .map_err(|_| Errno::EFAULT)
    }

    /// Reads a `T` at `gpa`.
    pub fn read_obj<T: Pod>(&self, gpa: u64) -> Result<T, Errno> {
        let mut v = T::default();
        self.read_slice(gpa, v.as_bytes_mut())?;
        Ok(v)
    }

    /// Writes `v` at `gpa`.
    pub fn write_obj<T: Pod>(&self, gpa: u64, v: &T) -> Result<(), Errno> {
        self.write_slice(gpa, v.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ram() -> KernelRam {
        let mem = GuestMemoryMmap::from_ranges(&[
            (GuestAddress(0), 0x10_000),
            (GuestAddress(0x10_000), 0x1000), // adjacent, but not RAM
        ])
        .unwrap();
        KernelRam::new(mem, 0x10_000)
    }

    #[test]
    fn in_ram_accesses_work() {
        let r = ram();
        r.write_obj(0x100, &0x1122_3344_5566_7788u64).unwrap();
        assert_eq!(r.read_obj::<u64>(0x100), Ok(0x1122_3344_5566_7788));
        r.write_slice(0xfff8, &[1; 8]).unwrap();
        let mut b = [0u8; 8];
        r.read_slice(0xfff8, &mut b).unwrap();
        assert_eq!(b, [1; 8]);
        r.read_slice(0x10_000, &mut []).unwrap(); // empty, at the end
    }

    #[test]
    fn outside_across_and_wrapping_are_efault() {
        let r = ram();
        assert_eq!(r.read_obj::<u64>(0xfffc), Err(Errno::EFAULT)); // across the end
        assert_eq!(r.read_obj::<u8>(0x10_000), Err(Errno::EFAULT)); // memory, not RAM
        assert_eq!(r.write_obj(0x10_000, &1u8), Err(Errno::EFAULT));
        assert_eq!(r.read_obj::<u64>(u64::MAX - 3), Err(Errno::EFAULT)); // wraps
        assert_eq!(r.check(u64::MAX, 2), Err(Errno::EFAULT));
        assert!(r.contains(0, 0x10_000));
        assert!(!r.contains(1, 0x10_000));
        // Nothing was written past RAM.
        assert_eq!(
            r.memory().read_obj::<u8>(GuestAddress(0x10_000)).unwrap(),
            0
        );
    }
}
