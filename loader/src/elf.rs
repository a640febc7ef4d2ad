//! Checks a kernel ELF before linux-loader copies it: the header says
//! x86-64 executable, every PT_LOAD lies inside the file. Each problem is a
//! sentence for the user.

pub(crate) struct Segment {
    pub vaddr: u64,
    pub file_off: u64,
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

const EHDR_LEN: usize = 64;
const PHDR_LEN: usize = 56;
const PT_LOAD: u32 = 1;
const PT_INTERP: u32 = 3;
const ET_EXEC: u16 = 2;
const EM_X86_64: u16 = 62;

fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}
fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap_or([0; 4]))
}
fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap_or([0; 8]))
}

pub(crate) fn parse(b: &[u8]) -> Result<ElfInfo, String> {
    if b.len() < 4 || &b[..4] != b"\x7fELF" {
        return Err("not an ELF file (no \\x7fELF magic)".into());
    }
    if b.len() < EHDR_LEN {
        return Err(format!("ELF header truncated ({} bytes)", b.len()));
    }
    if b[4] != 2 || b[5] != 1 {
        return Err("not a 64-bit little-endian ELF".into());
    }
    let machine = u16_at(b, 18);
    if machine != EM_X86_64 {
        return Err(format!("ELF machine is {machine}, not x86-64 (62)"));
    }
    let etype = u16_at(b, 16);
    if etype != ET_EXEC {
        return Err(format!(
            "ELF type is {etype}, not a fixed-address executable (ET_EXEC = 2)"
        ));
    }
    let entry = u64_at(b, 24);
    let phoff = u64_at(b, 32);
    let phentsize = u16_at(b, 54) as usize;
    let phnum = u16_at(b, 56) as usize;
    if phentsize != PHDR_LEN {
        return Err(format!(
            "program header size {phentsize}, expected {PHDR_LEN}"
        ));
    }
    let ph_end = (phnum * PHDR_LEN) as u64 + phoff;
    if phoff > b.len() as u64 || ph_end > b.len() as u64 {
        return Err("program headers lie outside the file".into());
    }
    let mut segments = Vec::new();
    for i in 0..phnum {
        let p = &b[phoff as usize + i * PHDR_LEN..][..PHDR_LEN];
        let ptype = u32_at(p, 0);
        if ptype == PT_INTERP {
            return Err("dynamically linked (PT_INTERP); link the kernel statically".into());
        }
        if ptype != PT_LOAD {
            continue;
        }
        let seg = Segment {
            file_off: u64_at(p, 8),
            vaddr: u64_at(p, 16),
            file_len: u64_at(p, 32),
            mem_len: u64_at(p, 40),
        };
        let paddr = u64_at(p, 24);
        if paddr != seg.vaddr {
            return Err(format!(
                "segment {i} has paddr {paddr:#x} != vaddr {:#x}; the kernel is identity-mapped",
                seg.vaddr
            ));
        }
        if seg.file_len > seg.mem_len {
            return Err(format!("segment {i}: file size exceeds memory size"));
        }
        if seg
            .file_off
            .checked_add(seg.file_len)
            .is_none_or(|e| e > b.len() as u64)
        {
            return Err(format!("segment {i} lies outside the file (truncated?)"));
        }
        segments.push(seg);
    }
    if segments.is_empty() {
        return Err("no loadable segments".into());
    }
    Ok(ElfInfo { entry, segments })
}
