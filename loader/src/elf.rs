//! Checks a kernel ELF before linux-loader copies it: the header says
//! x86-64 executable, every PT_LOAD lies inside the file. The `elf` crate
//! reads the file (through vkernel-abi's shared checks); each problem is a
//! sentence for the user.

use ::elf::abi::{ET_EXEC, PT_INTERP, PT_LOAD};
use vkernel_abi::elf::{header, program_headers, ElfError, PHDR_LEN};

pub(crate) struct Segment {
    pub vaddr: u64,
    pub file_len: u64,
    pub mem_len: u64,
}

impl Segment {
    pub fn contains(&self, addr: u64) -> bool {
        addr >= self.vaddr && addr - self.vaddr < self.mem_len
    }
}

pub(crate) struct ElfInfo {
    pub entry: u64,
    pub segments: Vec<Segment>,
}

/// The sentence for a problem the shared checks found.
fn problem(e: ElfError) -> String {
    match e {
        ElfError::NotElf => "not an ELF file (no \\x7fELF magic)".into(),
        ElfError::Truncated(len) => format!("ELF header truncated ({len} bytes)"),
        ElfError::Version(v) => format!("ELF version is {v}, not 1 (EV_CURRENT)"),
        ElfError::NotElf64Le => "not a 64-bit little-endian ELF".into(),
        ElfError::Machine(m) => format!("ELF machine is {m}, not x86-64 (62)"),
        ElfError::PhentSize(n) => format!("program header size {n}, expected {PHDR_LEN}"),
        ElfError::PhdrsOutsideFile => "program headers lie outside the file".into(),
    }
}

pub(crate) fn parse(b: &[u8]) -> Result<ElfInfo, String> {
    let h = header(b).map_err(problem)?;
    if h.e_type != ET_EXEC {
        return Err(format!(
            "ELF type is {}, not a fixed-address executable (ET_EXEC = 2)",
            h.e_type
        ));
    }
    let phdrs = program_headers(b, &h).map_err(problem)?;
    let mut segments = Vec::new();
    for (i, p) in phdrs.iter().enumerate() {
        if p.p_type == PT_INTERP {
            return Err("dynamically linked (PT_INTERP); link the kernel statically".into());
        }
        if p.p_type != PT_LOAD {
            continue;
        }
        if p.p_paddr != p.p_vaddr {
            return Err(format!(
                "segment {i} has paddr {:#x} != vaddr {:#x}; the kernel is identity-mapped",
                p.p_paddr, p.p_vaddr
            ));
        }
        if p.p_filesz > p.p_memsz {
            return Err(format!("segment {i}: file size exceeds memory size"));
        }
        if p.p_offset
            .checked_add(p.p_filesz)
            .is_none_or(|e| e > b.len() as u64)
        {
            return Err(format!("segment {i} lies outside the file (truncated?)"));
        }
        segments.push(Segment {
            vaddr: p.p_vaddr,
            file_len: p.p_filesz,
            mem_len: p.p_memsz,
        });
    }
    if segments.is_empty() {
        return Err("no loadable segments".into());
    }
    Ok(ElfInfo {
        entry: h.e_entry,
        segments,
    })
}
