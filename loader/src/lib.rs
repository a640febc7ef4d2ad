//! Puts the guest kernel ELF and the cpio image into guest memory and
//! writes the boot info, checking each input first so a bad file is an
//! error naming the file and the problem, before any vCPU runs.
#![deny(missing_docs)]

pub mod cpio_writer;
mod elf;

use std::path::PathBuf;

use linux_loader::loader::{Elf, KernelLoader};
use vkernel_abi::{cpio, layout, BootInfo, Pod, BOOT_INFO_MAGIC};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

/// Why the guest could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The kernel file could not be read.
    #[error("kernel {path}: {source}")]
    ReadKernel {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The kernel is not a loadable x86-64 ELF executable.
    #[error("kernel {name}: {problem}")]
    BadKernel {
        /// The file (or "built-in").
        name: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The image is not a well-formed cpio newc archive.
    #[error("image {name}: {problem}")]
    BadImage {
        /// The file (or "built-in").
        name: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The command line is too long.
    #[error("kernel command line is {0} bytes; at most {max} fit", max = layout::CMDLINE_MAX)]
    CmdlineTooLong(usize),
    /// Writing guest memory failed (a host bug: every range is checked first).
    #[error("writing guest memory: {0}")]
    Memory(#[from] vm_memory::GuestMemoryError),
}

/// A kernel or image: bytes and the name to use in messages.
pub struct Blob<'a> {
    /// File name, or "built-in".
    pub name: String,
    /// Contents.
    pub bytes: &'a [u8],
}

/// Where things landed.
#[derive(Clone, Copy, Debug)]
pub struct Loaded {
    /// Kernel entry point.
    pub entry: u64,
    /// The boot info as written.
    pub boot_info: BootInfo,
}

const fn page_up(x: u64) -> u64 {
    (x + layout::PAGE_SIZE - 1) & !(layout::PAGE_SIZE - 1)
}

/// Checks the kernel and image, then writes kernel segments, image, command
/// line and boot info into `mem` (`[0, mem_bytes)` is guest RAM).
pub fn load(
    mem: &GuestMemoryMmap,
    mem_bytes: u64,
    pool_bytes: u64,
    kernel: &Blob,
    image: &Blob,
    cmdline: &str,
) -> Result<Loaded, LoadError> {
    let bad_kernel = |problem: String| LoadError::BadKernel {
        name: kernel.name.clone(),
        problem,
    };
    let elf = elf::parse(kernel.bytes).map_err(bad_kernel)?;
    for seg in &elf.segments {
        let end = seg.vaddr.checked_add(seg.mem_len);
        if seg.vaddr < layout::KERNEL_MIN_ADDR || end.is_none_or(|e| e > mem_bytes) {
            return Err(bad_kernel(format!(
                "segment {:#x}..{:#x} lies outside guest memory [{:#x}, {:#x})",
                seg.vaddr,
                seg.vaddr.saturating_add(seg.mem_len),
                layout::KERNEL_MIN_ADDR,
                mem_bytes
            )));
        }
    }
    if !elf.segments.iter().any(|s| s.contains(elf.entry)) {
        return Err(bad_kernel(format!(
            "entry point {:#x} is in no loadable segment",
            elf.entry
        )));
    }

    if let Err(e) = cpio::Archive::validate(image.bytes) {
        return Err(LoadError::BadImage {
            name: image.name.clone(),
            problem: e.to_string(),
        });
    }
    if cmdline.len() as u64 > layout::CMDLINE_MAX {
        return Err(LoadError::CmdlineTooLong(cmdline.len()));
    }

    let kernel_end = elf
        .segments
        .iter()
        .map(|s| s.vaddr + s.mem_len)
        .max()
        .unwrap_or(0);
    let image_addr = page_up(kernel_end);
    let image_end = image_addr + image.bytes.len() as u64;
    if image_end > mem_bytes {
        return Err(LoadError::BadImage {
            name: image.name.clone(),
            problem: format!(
                "{} bytes do not fit in guest memory after the kernel (ends at {:#x}; memory is {:#x} bytes): raise --memory",
                image.bytes.len(),
                kernel_end,
                mem_bytes
            ),
        });
    }

    let mut reader = std::io::Cursor::new(kernel.bytes);
    Elf::load(
        mem,
        None,
        &mut reader,
        Some(GuestAddress(layout::KERNEL_MIN_ADDR)),
    )
    .map_err(|e| bad_kernel(e.to_string()))?;
    for seg in &elf.segments {
        // linux-loader copies file bytes only; the bss must read as zero.
        write_zeros(mem, seg.vaddr + seg.file_len, seg.mem_len - seg.file_len)?;
    }
    mem.write_slice(image.bytes, GuestAddress(image_addr))?;
    mem.write_slice(cmdline.as_bytes(), GuestAddress(layout::CMDLINE_ADDR))?;
    let boot_info = BootInfo {
        magic: BOOT_INFO_MAGIC,
        mem_bytes,
        image_addr,
        image_len: image.bytes.len() as u64,
        cmdline_addr: layout::CMDLINE_ADDR,
        cmdline_len: cmdline.len() as u64,
        free_start: page_up(image_end),
        pool_bytes,
        console_kinds: 0,
    };
    mem.write_slice(boot_info.as_bytes(), GuestAddress(layout::BOOT_INFO_ADDR))?;
    log::info!(
        "loaded kernel {} (entry {:#x}, ends {:#x}), image {} ({} bytes at {:#x})",
        kernel.name,
        elf.entry,
        kernel_end,
        image.name,
        image.bytes.len(),
        image_addr
    );
    Ok(Loaded {
        entry: elf.entry,
        boot_info,
    })
}

/// Zeroes `[addr, addr + len)` of `mem` from a static page of zeroes (a
/// buffer the size of the bss, a quarter of a megabyte, cost as much again
/// in page faults to allocate and read as the copy itself).
fn write_zeros(mem: &GuestMemoryMmap, addr: u64, len: u64) -> Result<(), LoadError> {
    static ZEROES: [u8; layout::PAGE_SIZE as usize] = [0; layout::PAGE_SIZE as usize];
    let mut done = 0;
    while done < len {
        let n = (len - done).min(layout::PAGE_SIZE);
        mem.write_slice(&ZEROES[..n as usize], GuestAddress(addr + done))?;
        done += n;
    }
    Ok(())
}

/// Records what the host's standard streams are in the boot info
/// [`load`] wrote (see [`BootInfo::console_kinds`]).
pub fn set_console_kinds(
    mem: &GuestMemoryMmap,
    loaded: &mut Loaded,
    kinds: u64,
) -> Result<(), LoadError> {
    loaded.boot_info.console_kinds = kinds;
    mem.write_slice(
        loaded.boot_info.as_bytes(),
        GuestAddress(layout::BOOT_INFO_ADDR),
    )?;
    Ok(())
}
