//! Loading an ELF program from the file system into a fresh vmspace and
//! building its initial stack as the Linux x86-64 ABI lays it out
//! (xv6's exec.c, for ELF64 and Linux's auxiliary vector).
//!
//! Accepted: ELF64, little-endian, x86-64, ET_EXEC (fixed address) or
//! ET_DYN (PIE), loaded at [`PIE_BASE`] as Linux does with ASLR off
//! (`setarch -R`): the same addresses every run. A program with
//! PT_INTERP (dynamically linked) gets its interpreter (ld.so, read from
//! the guest's own root) loaded too, at the top of the mmap area
//! ([`interp_base`]), and starts there; the auxiliary vector tells it
//! where the program is (AT_PHDR/AT_PHNUM/AT_ENTRY) and where it is
//! itself (AT_BASE), as Linux's binfmt_elf; the vDSO (and its clock page)
//! go below it, announced by AT_SYSINFO_EHDR.
//!
//! Segments are read from the file piece by piece straight into the new
//! address space (no copy of the whole file in the kernel heap).

use super::creds::Creds;
use super::ProcTable;
use crate::fs::textbusy;
use crate::fs::vfs::{Follow, InodeRef, Kind, Vfs, PATH_MAX};
use crate::mm::{AddressSpace, FileMap, Mm, SpaceRef};
use crate::param::STACK_BYTES;
use crate::random;
use ::elf::abi::{ET_DYN, ET_EXEC, PF_R, PF_W, PF_X, PT_INTERP, PT_LOAD, PT_PHDR};
use ::elf::segment::ProgramHeader;
use alloc::rc::Rc;
use alloc::vec::Vec;
use vkernel_abi::elf::{header, program_headers, ElfError, ProgramHeaders, PHDR_LEN};
use vkernel_abi::layout::{PAGE_SIZE, VM_MAX_USER_ADDRESS, VM_MIN_USER_ADDRESS};
use vkernel_abi::mman::*;
use vkernel_abi::{rflags, selector, Errno, TrapFrame, VextFrame};

/// Where a static-PIE is loaded (Linux's default for PIE programs).
pub const PIE_BASE: u64 = 0x5555_5555_4000;
/// Top of the user stack; one unmapped guard page lies above it, below the
/// trap area.
pub const STACK_TOP: u64 = VM_MAX_USER_ADDRESS - PAGE_SIZE;
/// mmap without MAP_FIXED hands out addresses downwards from here.
pub const MMAP_TOP: u64 = STACK_TOP - STACK_BYTES - (1 << 30);
/// Room kept for the program break above the image.
pub const BRK_ROOM: u64 = 1 << 40;

/// Linux's `MAX_ARG_STRLEN`: one argument or environment string, its NUL
/// included, is at most 32 pages (`E2BIG` past it).
pub const MAX_ARG_STRLEN: usize = 32 * PAGE_SIZE as usize;
/// Linux's `ARG_MAX`: the strings may always take 32 pages, however small
/// the stack limit.
pub const ARG_MIN_LIMIT: u64 = 32 * PAGE_SIZE;
/// Linux's `_STK_LIM / 4 * 3`: the most the strings may take, however large
/// the stack limit (6 MiB).
pub const ARG_MAX_LIMIT: u64 = (8 << 20) / 4 * 3;

/// The bytes the strings of an exec (argument, environment and the
/// program's path, each with its NUL) and the argv and envp pointers may
/// take with stack limit (soft `RLIMIT_STACK`) `stack_limit`: a quarter of
/// it, at least [`ARG_MIN_LIMIT`] and at most [`ARG_MAX_LIMIT`] (Linux's
/// `bprm_stack_limits`). 2 MiB with the default 8 MiB stack.
pub fn arg_limit(stack_limit: u64) -> usize {
    (stack_limit / 4).clamp(ARG_MIN_LIMIT, ARG_MAX_LIMIT) as usize
}

/// The argv and envp strings of an exec, copied out of the caller (or made
/// by the kernel for init) before the old image goes away. Held in the
/// kernel heap, sized as the strings need (execve measures them first and
/// reserves that much, so no growth doubles it), within [`arg_limit`].
pub struct ArgBuf {
    /// The strings, each with its NUL, argv first.
    bytes: Vec<u8>,
    /// (offset, length) of each string: argv first, then envp.
    spans: Vec<(u32, u32)>,
    pub argc: usize,
    pub envc: usize,
    /// What the strings and pointers may take ([`arg_limit`]).
    limit: usize,
}

impl ArgBuf {
    /// An empty buffer for an exec by a process whose soft `RLIMIT_STACK`
    /// is `stack_limit`.
    pub fn new(stack_limit: u64) -> Self {
        ArgBuf {
            bytes: Vec::new(),
            spans: Vec::new(),
            argc: 0,
            envc: 0,
            limit: arg_limit(stack_limit),
        }
    }

    /// Bytes the strings and pointers may take.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes `strings` strings of `bytes` bytes (NULs included) take with
    /// their pointers, as Linux counts them (argv has at least one).
    pub fn cost(bytes: usize, strings: usize) -> usize {
        bytes.saturating_add(strings.max(1).saturating_mul(8))
    }

    /// Whether a string of `n` bytes (without its NUL) may be added:
    /// `E2BIG` past [`MAX_ARG_STRLEN`] or the limit.
    fn check(&self, n: usize) -> Result<(), Errno> {
        let strings = self.argc + self.envc + 1;
        if n >= MAX_ARG_STRLEN || Self::cost(self.bytes.len() + n + 1, strings) > self.limit {
            return Err(Errno::E2BIG);
        }
        Ok(())
    }

    /// Makes room for `strings` more strings of `bytes` bytes in all (NULs
    /// included), at once: `ENOMEM` if the heap cannot hold them.
    pub fn reserve(&mut self, bytes: usize, strings: usize) -> Result<(), Errno> {
        self.bytes
            .try_reserve_exact(bytes)
            .map_err(|_| Errno::ENOMEM)?;
        self.spans
            .try_reserve_exact(strings)
            .map_err(|_| Errno::ENOMEM)
    }

    /// Records the string just appended to `bytes` (`n` bytes and its NUL).
    fn record(&mut self, n: usize, env: bool) -> Result<(), Errno> {
        if !env && self.envc != 0 {
            return Err(Errno::EINVAL); // argv must come first
        }
        self.spans.try_reserve(1).map_err(|_| Errno::ENOMEM)?;
        self.spans
            .push(((self.bytes.len() - n - 1) as u32, n as u32));
        if env {
            self.envc += 1;
        } else {
            self.argc += 1;
        }
        Ok(())
    }

    /// Adds a string (argv if `env` is false).
    pub fn push(&mut self, s: &[u8], env: bool) -> Result<(), Errno> {
        self.check(s.len())?;
        self.bytes
            .try_reserve(s.len() + 1)
            .map_err(|_| Errno::ENOMEM)?;
        self.bytes.extend_from_slice(s);
        self.bytes.push(0);
        self.record(s.len(), env)
    }

    /// Adds the string `fill` copies, with its NUL, into the room
    /// [`ArgBuf::reserve`] made (it returns the string's length). `E2BIG` when the string does not fit that room or the limit.
    pub fn push_with(
        &mut self,
        env: bool,
        fill: impl FnOnce(&mut [u8]) -> Result<usize, Errno>,
    ) -> Result<(), Errno> {
        let at = self.bytes.len();
        let room = self.bytes.capacity() - at;
        if room == 0 {
            return Err(Errno::E2BIG);
        }
        self.bytes.resize(at + room, 0);
        // The string's NUL lands in the room too: `n < room`.
        let filled = fill(&mut self.bytes[at..at + room]);
        let n = match filled.and_then(|n| self.check_at(at, n)) {
            Ok(n) if n >= room => Err(Errno::E2BIG),
            r => r,
        };
        let n = match n {
            Ok(n) => n,
            Err(e) => {
                self.bytes.truncate(at);
                return Err(e);
            }
        };
        self.bytes.truncate(at + n + 1);
        self.bytes[at + n] = 0;
        self.record(n, env)
    }

    /// [`ArgBuf::check`] for a string of `n` bytes being written at `at`.
    fn check_at(&self, at: usize, n: usize) -> Result<usize, Errno> {
        let strings = self.argc + self.envc + 1;
        if n >= MAX_ARG_STRLEN || Self::cost(at + n + 1, strings) > self.limit {
            return Err(Errno::E2BIG);
        }
        Ok(n)
    }

    /// Whether the strings, the pointers and a program path of `path_len`
    /// bytes fit the limit (Linux counts the path with them).
    pub fn fits_with_path(&self, path_len: usize) -> bool {
        path_len < MAX_ARG_STRLEN
            && Self::cost(self.bytes.len() + path_len + 1, self.argc + self.envc) <= self.limit
    }

    /// The strings, each with its NUL, argv first, as the new stack holds
    /// them.
    fn strings(&self) -> &[u8] {
        &self.bytes
    }

    /// Replaces argv[0] with the strings of `front` (for `#!` scripts).
    pub fn replace_argv0(&mut self, front: &[&[u8]]) -> Result<(), ExecError> {
        let first = usize::from(self.argc > 0);
        let mut old = ArgBuf::new(0);
        old.limit = self.limit;
        core::mem::swap(self, &mut old);
        let too_big = |e| {
            if e == Errno::ENOMEM {
                ExecError::NoMemory
            } else {
                ExecError::TooBig
            }
        };
        for f in front {
            self.push(f, false).map_err(too_big)?;
        }
        for i in first..old.argc + old.envc {
            self.push(old.get(i), i >= old.argc).map_err(too_big)?;
        }
        Ok(())
    }

    /// Copies of the argv and of the envp strings, each string with its
    /// NUL (`/proc/PID/cmdline` and `environ`): `ENOMEM` if the heap cannot
    /// hold them.
    pub fn lists(&self) -> Result<(Vec<u8>, Vec<u8>), Errno> {
        let split = self
            .spans
            .get(self.argc)
            .map_or(self.bytes.len(), |s| s.0 as usize);
        let copy = |part: &[u8]| -> Result<Vec<u8>, Errno> {
            let mut v = Vec::new();
            v.try_reserve_exact(part.len()).map_err(|_| Errno::ENOMEM)?;
            v.extend_from_slice(part);
            Ok(v)
        };
        Ok((copy(&self.bytes[..split])?, copy(&self.bytes[split..])?))
    }

    /// String `i` (argv then envp), without its NUL.
    pub fn get(&self, i: usize) -> &[u8] {
        let (o, n) = self.spans[i];
        &self.bytes[o as usize..(o + n) as usize]
    }
}

/// Why a program could not be loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExecError {
    /// The path did not resolve to an executable file.
    Lookup(Errno),
    NotElf,
    NotX86_64,
    NotExecutable,
    /// The interpreter the program names could not be loaded.
    Interp(Errno),
    Malformed(&'static str),
    NoMemory,
    TooBig,
}

impl ExecError {
    /// The errno execve returns.
    pub fn errno(self) -> Errno {
        match self {
            ExecError::Lookup(e) | ExecError::Interp(e) => e,
            ExecError::NoMemory => Errno::ENOMEM,
            ExecError::TooBig => Errno::E2BIG,
            _ => Errno::ENOEXEC,
        }
    }

    /// One sentence for the console.
    pub fn message(self) -> &'static str {
        match self {
            ExecError::Lookup(e) if e == Errno::ENOENT => "no such file",
            ExecError::Lookup(e) if e == Errno::EACCES => "not an executable file",
            ExecError::Lookup(e) if e == Errno::ELOOP => "too many interpreters or symbolic links",
            ExecError::Lookup(_) => "cannot be looked up",
            ExecError::NotElf => "not an ELF executable",
            ExecError::NotX86_64 => "not an x86-64 (64-bit little-endian) executable",
            ExecError::NotExecutable => "not an executable (ELF type is neither EXEC nor DYN)",
            ExecError::Interp(e) if e == Errno::ENOENT => {
                "its interpreter (PT_INTERP, the dynamic loader) is not in the guest's root: give the guest a root with it (--rootfs /) or link with -static"
            }
            ExecError::Interp(_) => "its interpreter (PT_INTERP) cannot be loaded",
            ExecError::Malformed(why) => why,
            ExecError::NoMemory => "out of memory",
            ExecError::TooBig => "arguments too long",
        }
    }
}

/// Where execveat finds the program (execve: the path from the working
/// directory, following symbolic links).
pub enum ExecAt {
    /// `name` from directory `start`, whose absolute path is `base`;
    /// `follow`: a symbolic link at the end is followed (else `ELOOP`).
    Path {
        start: InodeRef,
        base: Vec<u8>,
        name: Vec<u8>,
        follow: Follow,
    },
    /// An open file itself (`AT_EMPTY_PATH`), and the path it was opened by.
    File { node: InodeRef, real: Vec<u8> },
}

impl ProcTable {
    /// Loads the program at `path` (resolved from the process's working
    /// directory, or as `at` says) into a new address space for process
    /// `s` and, on success, switches the process to it (the old image
    /// goes, and the descriptors marked close-on-exec). `path` is the
    /// name the program runs as (its `comm`, `AT_EXECFN`, and the script
    /// path a `#!` interpreter gets). A script starting with `#!` runs
    /// its interpreter with the script's path as an argument, as Linux's
    /// binfmt_script does, up to [`MAX_INTERP_DEPTH`] levels.
    pub fn exec(
        &mut self,
        mm: &mut Mm,
        vfs: &Vfs,
        s: usize,
        path: &[u8],
        at: Option<ExecAt>,
        args: &mut ArgBuf,
    ) -> Result<(), ExecError> {
        // Linux counts the path with the strings (bprm_stack_limits).
        if !args.fits_with_path(path.len()) {
            return Err(ExecError::TooBig);
        }
        let cwd = self.procs[s].cwd.clone().unwrap_or_else(|| vfs.root());
        let mut at = at;
        let mut file = path.to_vec();
        let mut depth = 0;
        // Run from a descriptor (AT_EMPTY_PATH), a program is named by
        // its file, as Linux 6.14 on: not by `/dev/fd/N`.
        let mut fd_name: Option<Vec<u8>> = None;
        let program = loop {
            let lookup = ExecError::Lookup;
            let (node, real) = match at.take() {
                Some(ExecAt::File { node, real }) => {
                    let name = real.strip_suffix(b" (deleted)").unwrap_or(&real);
                    fd_name = Some(name.to_vec());
                    (node, real)
                }
                Some(ExecAt::Path {
                    start,
                    base,
                    name,
                    follow,
                }) => (
                    vfs.resolve(&start, &name, follow).map_err(lookup)?,
                    vfs.real_path(&base, &name),
                ),
                None => (
                    vfs.resolve(&cwd, &file, Follow::Yes).map_err(lookup)?,
                    vfs.real_path(&self.procs[s].cwd_path, &file),
                ),
            };
            let m = node.meta();
            if m.kind == Kind::Symlink {
                return Err(ExecError::Lookup(Errno::ELOOP));
            }
            if m.kind != Kind::Regular || m.perm & 0o111 == 0 {
                return Err(ExecError::Lookup(Errno::EACCES));
            }
            let program = Image::read(node, real)?;
            let Some((interp, arg)) = shebang(&program.head)? else {
                break program;
            };
            fd_name = None;
            depth += 1;
            if depth > MAX_INTERP_DEPTH {
                return Err(ExecError::Lookup(Errno::ELOOP));
            }
            // argv becomes: interpreter, its one argument (if any), the
            // script's path, then the script's argv[1..].
            let mut front: Vec<&[u8]> = Vec::new();
            front.push(&interp);
            if let Some(a) = &arg {
                front.push(a);
            }
            front.push(&file);
            args.replace_argv0(&front)?;
            file = interp.clone();
        };
        let interp = match program.interp()? {
            Some(name) => {
                let node = vfs
                    .resolve(&cwd, &name, Follow::Yes)
                    .map_err(ExecError::Interp)?;
                if node.meta().kind != Kind::Regular {
                    return Err(ExecError::Interp(Errno::EACCES));
                }
                Some(Image::read(
                    node,
                    vfs.real_path(&self.procs[s].cwd_path, &name),
                )?)
            }
            None => None,
        };
        // A program whose file is open for writing does not run (ETXTBSY);
        // while it runs, its file is not written.
        let running = textbusy::Running::new(&program.node).map_err(ExecError::Lookup)?;
        // What /proc shows of the strings, taken while exec may still fail.
        let (cmdline, environ) = args.lists().map_err(|_| ExecError::NoMemory)?;
        // The credentials it runs with (a set-user-ID program's owner),
        // which its auxiliary vector tells it.
        let creds = {
            let m = program.node.meta();
            let p = &self.procs[s];
            let mut c = p.creds;
            c.exec((m.perm, m.uid, m.gid), p.no_new_privs);
            c
        };
        let loaded = load(mm, &program, interp.as_ref(), path, args, &creds)?;
        loaded.space.borrow_mut().program_hold = Some(running);
        // The point of no return: the other threads end, the new image's
        // FPU starts clean.
        self.de_thread(s);
        self.fpu_reset(s).map_err(|_| ExecError::NoMemory)?;
        {
            let mut space = loaded.space.borrow_mut();
            space.brk_start = loaded.brk;
            space.brk = loaded.brk;
            space.mmap_floor = loaded.brk.saturating_add(BRK_ROOM);
        }
        let p = &mut self.procs[s];
        // Gaining ids makes it undumpable, as Linux (no core, no ptrace).
        if creds.euid != p.creds.euid || creds.egid != p.creds.egid {
            p.dumpable = false;
        }
        p.set_creds(creds);
        p.space = Some(loaded.space);
        p.tf = start_frame(loaded.entry, loaded.sp);
        p.vf = VextFrame::default();
        p.pkru = 0;
        p.clear_child_tid = 0;
        p.robust_list = 0;
        // Handlers are gone with the old image (ignored signals stay
        // ignored); the mask and pending signals stay; so does no
        // alternate stack.
        p.did_exec = true;
        // POSIX timers end with the old image; the interval timers stay.
        p.timers.exec();
        p.actions.borrow_mut().reset_for_exec();
        p.sig.altstack = super::signal::AltStack::disabled();
        let name = fd_name.as_deref().unwrap_or(path);
        p.set_name(name);
        let closed = p.files.borrow_mut().close_on_exec();
        if let Some(t) = &p.task {
            t.set_comm(name);
            // Resolved before the record changed (Image::read): a
            // `/proc/self/exe` in the path names the old program.
            *t.exe.borrow_mut() = program.name.to_vec();
            *t.cmdline.borrow_mut() = Rc::new(cmdline);
            *t.environ.borrow_mut() = Rc::new(environ);
            t.attach(&p.files, p.space.as_ref());
        }
        // Record locks survive exec, but not on the files it closed.
        let pid = p.pid;
        self.close_files(pid, closed);
        Ok(())
    }
}

/// A `#!` line: the interpreter's path and its optional argument.
type Interpreter = (Vec<u8>, Option<Vec<u8>>);

/// How many `#!` interpreters one exec follows (Linux's
/// `BINPRM_MAX_RECURSION`, past which it is `ELOOP`).
pub const MAX_INTERP_DEPTH: usize = 4;

/// The interpreter and its optional argument of a `#!` script: the first
/// line, up to 256 bytes (Linux's `BINPRM_BUF_SIZE`), split at the first
/// blank after the interpreter's path. `None` if not a script.
fn shebang(bytes: &[u8]) -> Result<Option<Interpreter>, ExecError> {
    let Some(rest) = bytes.strip_prefix(b"#!") else {
        return Ok(None);
    };
    let line = &rest[..rest.len().min(254)];
    let line = match line.iter().position(|&b| b == b'\n') {
        Some(end) => &line[..end],
        None if rest.len() > 254 => return Err(ExecError::Malformed("#! line is too long")),
        None => line,
    };
    let blank = |b: &u8| *b == b' ' || *b == b'\t';
    let line = line.trim_ascii();
    if line.is_empty() {
        return Err(ExecError::Lookup(Errno::ENOEXEC));
    }
    let (interp, arg) = match line.iter().position(blank) {
        Some(i) => (&line[..i], Some(line[i..].trim_ascii())),
        None => (line, None),
    };
    let arg = arg.filter(|a| !a.is_empty()).map(<[u8]>::to_vec);
    Ok(Some((interp.to_vec(), arg)))
}

/// A fresh user frame entering `entry` with stack `sp`.
fn start_frame(entry: u64, sp: u64) -> TrapFrame {
    TrapFrame {
        rip: entry,
        rsp: sp,
        cs: selector::USER_CS as u64,
        ss: selector::USER_SS as u64,
        rflags: rflags::IF | rflags::FIXED,
        ..Default::default()
    }
}

/// What the new image needs to start.
pub struct Loaded {
    /// Its address space.
    pub space: SpaceRef,
    pub entry: u64,
    pub sp: u64,
    /// End of the highest segment, page-rounded: the initial break.
    pub brk: u64,
}

/// Most program headers exec reads.
const MAX_PHDRS: u16 = 64;

fn page_down(x: u64) -> u64 {
    x & !(PAGE_SIZE - 1)
}
fn page_up(x: u64) -> u64 {
    (x + PAGE_SIZE - 1) & !(PAGE_SIZE - 1)
}

/// The header fields exec uses, checked, and the program header table.
struct Header<'a> {
    dyn_: bool,
    entry: u64,
    phoff: u64,
    phdrs: ProgramHeaders<'a>,
}

/// Reads the file and program headers with the `elf` crate through the
/// checks the host shares (vkernel-abi's `elf`): ELF64, little-endian,
/// x86-64, 56-byte program headers inside the file.
fn parse_header(elf: &[u8]) -> Result<Header<'_>, ExecError> {
    let refuse = |e: ElfError| match e {
        ElfError::NotElf => ExecError::NotElf,
        ElfError::Truncated(_) => ExecError::Malformed("ELF header is cut short"),
        ElfError::Version(_) => ExecError::Malformed("ELF version is not 1"),
        ElfError::NotElf64Le | ElfError::Machine(_) => ExecError::NotX86_64,
        ElfError::PhentSize(_) => ExecError::Malformed("bad program header table"),
        ElfError::PhdrsOutsideFile => ExecError::Malformed("program headers lie outside the file"),
    };
    let h = header(elf).map_err(refuse)?;
    if h.e_type != ET_EXEC && h.e_type != ET_DYN {
        return Err(ExecError::NotExecutable);
    }
    if h.e_phnum == 0 || h.e_phnum > MAX_PHDRS {
        return Err(ExecError::Malformed("bad program header table"));
    }
    Ok(Header {
        dyn_: h.e_type == ET_DYN,
        entry: h.e_entry,
        phoff: h.e_phoff,
        phdrs: program_headers(elf, &h).map_err(refuse)?,
    })
}

/// ELF `p_flags` to PROT_ bits.
fn prot_of(flags: u32) -> u64 {
    let mut p = 0;
    if flags & PF_R != 0 {
        p |= PROT_READ;
    }
    if flags & PF_W != 0 {
        p |= PROT_WRITE;
    }
    if flags & PF_X != 0 {
        p |= PROT_EXEC;
    }
    p
}

/// The start of a program file: enough for the ELF header and program
/// headers (64 of 56 bytes after the 64-byte header) and a `#!` line.
const HEAD_BYTES: usize = 8192;

/// What [`Image::copy`] hands the file's bytes to.
type PieceSink<'a> = dyn FnMut(&[&[u8]]) -> Result<(), ExecError> + 'a;

/// An executable file and its first bytes.
pub struct Image {
    node: InodeRef,
    size: u64,
    head: Vec<u8>,
    /// Its path with symbolic links resolved: what `/proc/PID/maps`
    /// names its segments by.
    name: Rc<[u8]>,
}

impl Image {
    fn read(node: InodeRef, name: Vec<u8>) -> Result<Image, ExecError> {
        let size = node.meta().size;
        let want = (size as usize).min(HEAD_BYTES);
        let mut head = Vec::new();
        head.try_reserve_exact(want)
            .map_err(|_| ExecError::NoMemory)?;
        node.read_at(0, want, &mut |pieces| {
            let start = head.len();
            for p in pieces {
                head.extend_from_slice(p);
            }
            Ok(head.len() - start)
        })
        .map_err(|e| match e {
            Errno::ENOMEM => ExecError::NoMemory,
            e => ExecError::Lookup(e),
        })?;
        Ok(Image {
            node,
            size,
            head,
            name: name.into(),
        })
    }

    /// The PT_INTERP path, if the program names one.
    fn interp(&self) -> Result<Option<Vec<u8>>, ExecError> {
        let h = parse_header(&self.head)?;
        let Some(ph) = h.phdrs.iter().find(|ph| ph.p_type == PT_INTERP) else {
            return Ok(None);
        };
        if ph.p_filesz < 2 || ph.p_filesz > PATH_MAX as u64 {
            return Err(ExecError::Malformed("bad PT_INTERP"));
        }
        let mut name = Vec::new();
        self.copy(ph.p_offset, ph.p_filesz, &mut |pieces| {
            for p in pieces {
                name.extend_from_slice(p);
            }
            Ok(())
        })?;
        // A NUL-terminated path.
        match name.iter().position(|&b| b == 0) {
            Some(end) if end > 0 => {
                name.truncate(end);
                Ok(Some(name))
            }
            _ => Err(ExecError::Malformed("bad PT_INTERP")),
        }
    }

    /// Hands `f` the file's bytes `[off, off + len)`, as lists of pieces
    /// (a whole list at once: one copy into the new space per list).
    fn copy(&self, off: u64, len: u64, f: &mut PieceSink) -> Result<(), ExecError> {
        if off.checked_add(len).is_none_or(|e| e > self.size) {
            return Err(ExecError::Malformed("segment lies outside the file"));
        }
        let mut at = off;
        let end = off + len;
        while at < end {
            let mut failed = None;
            let n = self
                .node
                .read_at(at, (end - at).min(1 << 22) as usize, &mut |pieces| {
                    if let Err(e) = f(pieces) {
                        failed = Some(e);
                        return Ok(0);
                    }
                    Ok(pieces.iter().map(|p| p.len()).sum())
                })
                .map_err(|e| match e {
                    Errno::ENOMEM => ExecError::NoMemory,
                    _ => ExecError::Malformed("the file cannot be read"),
                })?;
            if let Some(e) = failed {
                return Err(e);
            }
            if n == 0 {
                return Err(ExecError::Malformed("the file is shorter than it says"));
            }
            at += n as u64;
        }
        Ok(())
    }
}

/// Pages below the initial stack pointer mapped ahead at exec.
const STACK_PREFAULT_PAGES: u64 = 8;

/// The aligned window around the entry point mapped ahead at exec.
const ENTRY_PREFAULT_BYTES: u64 = 64 * PAGE_SIZE;

/// Pages of a segment's zero-filled tail mapped ahead at exec.
const ZERO_PREFAULT_PAGES: u64 = 4;

/// Loads `program` (run as `path`) and its interpreter, if it has one,
/// into a new address space with the arguments in `args`. On error
/// nothing is left behind.
fn load(
    mm: &mut Mm,
    program: &Image,
    interp: Option<&Image>,
    path: &[u8],
    args: &ArgBuf,
    creds: &Creds,
) -> Result<Loaded, ExecError> {
    let h = parse_header(&program.head)?;
    // Its calls to the host go together, when the image is in place (or
    // as a large segment's bytes go, from the file's pages).
    let space = mm.new_space().map_err(|_| ExecError::NoMemory)?;
    // On error the new space is dropped here, which destroys it.
    let (entry, sp, brk) = {
        let mut space = space.borrow_mut();
        let base = if h.dyn_ { PIE_BASE } else { 0 };
        let (top, phdr) = load_segments(program, &h, base, &mut space)?;
        let mut aux = AuxInfo {
            phdr,
            phnum: h.phdrs.len() as u64,
            entry: base + h.entry,
            base: 0,
            sysinfo_ehdr: 0,
            creds: *creds,
        };
        let mut entry = base + h.entry;
        // The code around the entry point runs first.
        let _ = space.prefault(
            entry & !(ENTRY_PREFAULT_BYTES - 1),
            ENTRY_PREFAULT_BYTES,
            false,
        );
        if let Some(interp) = interp {
            let ih = parse_header(&interp.head)?;
            let ibase = if ih.dyn_ { interp_base(&ih)? } else { 0 };
            load_segments(interp, &ih, ibase, &mut space)?;
            aux.base = ibase;
            entry = ibase + ih.entry;
            let _ = space.prefault(
                entry & !(ENTRY_PREFAULT_BYTES - 1),
                ENTRY_PREFAULT_BYTES,
                false,
            );
        }
        // The main stack faults in small windows as a thread's does
        // (`MAP_STACK`): a program uses a few pages of it, and a 64-page
        // window at its top was copied by every fork (systest's fork
        // copied 86 pages, now 34).
        space
            .map_anon_as(
                STACK_TOP - STACK_BYTES,
                STACK_BYTES,
                PROT_READ | PROT_WRITE,
                true,
            )
            .map_err(|_| ExecError::NoMemory)?;
        // The vDSO (and its clock page) at the top of the mmap area (below
        // an interpreter), where Linux puts the first mappings.
        if let Some(v) = mm.vdso.as_ref() {
            aux.sysinfo_ehdr = v
                .map(&mut space, MMAP_TOP, top.saturating_add(BRK_ROOM))
                .map_err(|_| ExecError::NoMemory)?;
        }
        let sp = build_stack(&mut space, path, args, &aux)?;
        // The first frames go below the initial stack pointer (a hint).
        let below = STACK_PREFAULT_PAGES * PAGE_SIZE;
        let _ = space.prefault(page_down(sp) - below, below, true);
        space.send_deferred().map_err(|_| ExecError::NoMemory)?;
        (entry, sp, top)
    };
    Ok(Loaded {
        space,
        entry,
        sp,
        brk,
    })
}

/// Where an ET_DYN interpreter goes: just below [`MMAP_TOP`], where
/// Linux's first mmap would put it (the mmap area grows down from
/// there, below it).
fn interp_base(h: &Header) -> Result<u64, ExecError> {
    let span = h
        .phdrs
        .iter()
        .filter(|ph| ph.p_type == PT_LOAD)
        .map(|ph| ph.p_vaddr.saturating_add(ph.p_memsz))
        .max()
        .unwrap_or(0);
    if span > 1 << 32 {
        return Err(ExecError::Malformed("interpreter is too large"));
    }
    Ok(page_down(MMAP_TOP - page_up(span)))
}

/// Maps the PT_LOAD segments of `img` at `base` + their addresses and
/// fills them from the file. Returns the end of the highest segment
/// (page-rounded) and where the program headers are in memory.
fn load_segments(
    img: &Image,
    h: &Header,
    base: u64,
    space: &mut AddressSpace,
) -> Result<(u64, u64), ExecError> {
    let nomem = |_| ExecError::NoMemory;
    // The end of the previous segment's pages and its protection: two
    // segments may share a boundary page, which then gets both.
    let mut prev_end = 0u64;
    let mut prev_prot = 0u64;
    let mut top = 0u64;
    let mut phdr_addr = 0u64;
    let mut loads = 0;
    for ph in h.phdrs.iter() {
        if ph.p_type == PT_PHDR {
            phdr_addr = base.wrapping_add(ph.p_vaddr);
        }
        if ph.p_type != PT_LOAD || ph.p_memsz == 0 {
            continue;
        }
        loads += 1;
        let va = base.checked_add(ph.p_vaddr);
        let end = va.and_then(|v| v.checked_add(ph.p_memsz));
        let (Some(va), Some(end)) = (va, end) else {
            return Err(ExecError::Malformed("segment address overflows"));
        };
        if ph.p_filesz > ph.p_memsz
            || ph
                .p_offset
                .checked_add(ph.p_filesz)
                .is_none_or(|e| e > img.size)
        {
            return Err(ExecError::Malformed("segment lies outside the file"));
        }
        if va < VM_MIN_USER_ADDRESS || end > MMAP_TOP {
            return Err(ExecError::Malformed(
                "segment outside the user address range",
            ));
        }
        if va < prev_end.saturating_sub(PAGE_SIZE) {
            return Err(ExecError::Malformed("segments overlap or are not in order"));
        }
        let (start, stop) = (page_down(va), page_up(end));
        let prot = prot_of(ph.p_flags);
        // Mapped from the file, as Linux's binfmt_elf maps it (private,
        // copy-on-write), where the file can be mapped and the segment
        // lies at its page offset: forks share its untouched pages (a
        // static program's text was copied by every fork), and
        // `/proc/PID/maps` names the file. Otherwise its bytes are copied
        // into anonymous memory.
        let object = img.node.pager().filter(|_| {
            ph.p_filesz > 0 && start >= prev_end && va % PAGE_SIZE == ph.p_offset % PAGE_SIZE
        });
        if let Some(object) = object {
            let file_end = page_up(va + ph.p_filesz);
            let file = FileMap {
                object,
                pgoff: page_down(ph.p_offset) / PAGE_SIZE,
                shared: false,
                may_write: true,
                name: img.name.clone(),
            };
            space
                .map_file(start, file_end - start, prot, file)
                .map_err(nomem)?;
            // The rest of the last file page belongs to the zero-filled
            // part: cleared where it can be written (Linux's padzero).
            let tail = va + ph.p_filesz;
            if ph.p_memsz > ph.p_filesz && prot & PROT_WRITE != 0 && file_end > tail {
                let zeros = [0u8; PAGE_SIZE as usize];
                let n = (file_end - tail) as usize;
                if space.write(tail, &zeros[..n]) != n {
                    return Err(ExecError::NoMemory);
                }
            }
            if stop > file_end {
                space
                    .map_anon(file_end, stop - file_end, prot)
                    .map_err(nomem)?;
            }
            // Mapped ahead with the image (a fault, two exits, per window
            // otherwise): a read-only segment's first pages; a writable
            // one whole, as the private copies its writes would make (a
            // program writes its data all over as it starts).
            let _ = space.prefault(start, file_end - start, prot & PROT_WRITE != 0);
        } else {
            copy_segment(img, &ph, va, (prev_end, prev_prot), prot, space)?;
        }
        if phdr_addr == 0 && (ph.p_offset..ph.p_offset + ph.p_filesz).contains(&h.phoff) {
            phdr_addr = va + (h.phoff - ph.p_offset);
        }
        // The zero-filled tail's first pages (static data, the heap's
        // start) are touched at once: mapped ahead with the image (a
        // hint; a host fault each otherwise).
        let zero_from = page_up(va + ph.p_filesz);
        let zero_to = stop.min(zero_from.saturating_add(ZERO_PREFAULT_PAGES * PAGE_SIZE));
        if prot != 0 && zero_to > zero_from {
            let _ = space.prefault(zero_from, zero_to - zero_from, true);
        }
        prev_end = stop;
        prev_prot = prot;
        top = top.max(stop);
    }
    if loads == 0 {
        return Err(ExecError::Malformed("no loadable segment"));
    }
    Ok((top, phdr_addr))
}

/// Maps segment `ph` of `img` at `va` (with `prot`) as anonymous memory
/// and copies its bytes in from the file. `prev`: where the previous
/// segment's pages end and their protection; a page the two share gets
/// both protections.
fn copy_segment(
    img: &Image,
    ph: &ProgramHeader,
    va: u64,
    prev: (u64, u64),
    prot: u64,
    space: &mut AddressSpace,
) -> Result<(), ExecError> {
    let nomem = |_| ExecError::NoMemory;
    let (prev_end, prev_prot) = prev;
    let (start, stop) = (page_down(va), page_up(va + ph.p_memsz));
    let map_from = start.max(prev_end);
    // Mapped with the segment's own protection at once: the kernel's
    // copy of the contents below does not need PROT_WRITE (either
    // pmap writes any accessible page, as Linux's kernel writes the
    // pages of a read-only segment it loads), and a protect after it
    // was one hypercall more per segment. Only PROT_NONE, which the
    // copy cannot pass, is mapped writable and protected afterwards.
    let map_prot = if prot == PROT_NONE {
        PROT_READ | PROT_WRITE
    } else {
        prot
    };
    if stop > map_from {
        space
            .map_anon(map_from, stop - map_from, map_prot)
            .map_err(nomem)?;
    }
    if ph.p_filesz > 0 {
        let mut at = va;
        img.copy(ph.p_offset, ph.p_filesz, &mut |pieces| {
            let len: usize = pieces.iter().map(|p| p.len()).sum();
            if space.write_v(at, pieces) != len {
                return Err(ExecError::NoMemory);
            }
            at += len as u64;
            Ok(())
        })?;
    }
    if prot == PROT_NONE && stop > map_from {
        space
            .protect(map_from, stop - map_from, prot)
            .map_err(nomem)?;
    }
    // A page shared with the previous segment gets both protections.
    if start < prev_end && prot | prev_prot != prev_prot {
        space
            .protect(start, PAGE_SIZE, prot | prev_prot)
            .map_err(nomem)?;
    }
    Ok(())
}

/// Linux's AT_SECURE for a program that runs with other ids than its
/// caller's real ones, or with capabilities a non-root caller lacks
/// (`cap_bprm_secureexec`): ld.so then ignores LD_PRELOAD and the like.
fn secure(c: &Creds) -> bool {
    let root = c.ruid == 0;
    c.euid != c.ruid || c.egid != c.rgid || (!root && c.cap_permitted != 0)
}

struct AuxInfo {
    /// The vDSO's ELF header (0: none).
    sysinfo_ehdr: u64,
    phdr: u64,
    phnum: u64,
    entry: u64,
    /// Where the interpreter is (0: none).
    base: u64,
    /// The ids it runs with (AT_UID and the rest; AT_SECURE when they
    /// differ, as a set-user-ID program's do).
    creds: Creds,
}

const AT_NULL: u64 = 0;
const AT_PHDR: u64 = 3;
const AT_PHENT: u64 = 4;
const AT_PHNUM: u64 = 5;
const AT_PAGESZ: u64 = 6;
const AT_SYSINFO_EHDR: u64 = 33;
const AT_BASE: u64 = 7;
const AT_FLAGS: u64 = 8;
const AT_ENTRY: u64 = 9;
const AT_UID: u64 = 11;
const AT_EUID: u64 = 12;
const AT_GID: u64 = 13;
const AT_EGID: u64 = 14;
const AT_PLATFORM: u64 = 15;
const AT_HWCAP: u64 = 16;
const AT_CLKTCK: u64 = 17;
const AT_SECURE: u64 = 23;
const AT_RANDOM: u64 = 25;
const AT_EXECFN: u64 = 31;

/// Builds the initial stack below STACK_TOP and returns rsp:
///
/// ```text
///   rsp -> argc
///          argv[0..argc], NULL
///          envp[0..envc], NULL
///          auxv pairs ..., AT_NULL 0
///          (padding)
///          16 random bytes, "x86_64"
///          argv and envp strings, exec path
///   STACK_TOP - 8: 0 (end marker)
/// ```
///
/// The strings go onto the new stack straight from `args` (in its order,
/// argv[0] lowest, as Linux lays them out); the words below them are built
/// in a heap buffer of the size they need.
fn build_stack(
    space: &mut AddressSpace,
    path: &[u8],
    args: &ArgBuf,
    aux: &AuxInfo,
) -> Result<u64, ExecError> {
    let nomem = |_| ExecError::NoMemory;
    let execfn = STACK_TOP - 8 - (path.len() as u64 + 1);
    let strings = args.strings();
    let strings_at = execfn - strings.len() as u64;
    // The strings and pointers fit the limit, which is below the stack's
    // size: checked, as the stack must hold the words below them too.
    if (STACK_TOP - strings_at) as usize + 8 * (args.argc + args.envc) + 4096 > STACK_BYTES as usize
    {
        return Err(ExecError::TooBig);
    }
    let mut top: Vec<u8> = Vec::new();
    top.try_reserve_exact(path.len() + 9).map_err(nomem)?;
    top.extend_from_slice(path);
    top.extend_from_slice(&[0; 9]);
    if space.write(execfn, &top) != top.len() || space.write(strings_at, strings) != strings.len() {
        return Err(ExecError::NoMemory);
    }
    let platform = strings_at - 7;
    let random_addr = platform - 16;
    let lo = random_addr;
    // SAFETY-free: cpuid is allowed in ring 3 and has no side effects.
    let hwcap = core::arch::x86_64::__cpuid(1).edx as u64;
    let auxv: [(u64, u64); 18] = [
        (AT_SYSINFO_EHDR, aux.sysinfo_ehdr),
        (AT_PHDR, aux.phdr),
        (AT_PHENT, PHDR_LEN as u64),
        (AT_PHNUM, aux.phnum),
        (AT_PAGESZ, PAGE_SIZE),
        (AT_BASE, aux.base),
        (AT_FLAGS, 0),
        (AT_ENTRY, aux.entry),
        (AT_UID, aux.creds.ruid.into()),
        (AT_EUID, aux.creds.euid.into()),
        (AT_GID, aux.creds.rgid.into()),
        (AT_EGID, aux.creds.egid.into()),
        (AT_HWCAP, hwcap),
        (AT_CLKTCK, 100),
        (AT_SECURE, secure(&aux.creds).into()),
        (AT_RANDOM, random_addr),
        (AT_PLATFORM, platform),
        (AT_EXECFN, execfn),
    ];
    let words = 1 + (args.argc + 1) + (args.envc + 1) + 2 * (auxv.len() + 1);
    let sp = (lo - words as u64 * 8) & !15;
    let mut rnd = [0u8; 16];
    random::fill(&mut rnd);
    let mut low: Vec<u8> = Vec::new();
    low.try_reserve_exact((strings_at - sp) as usize)
        .map_err(nomem)?;
    let mut word = |v: u64| low.extend_from_slice(&v.to_le_bytes());
    word(args.argc as u64);
    let mut at = strings_at;
    for i in 0..args.argc + args.envc {
        if i == args.argc {
            word(0);
        }
        word(at);
        at += args.get(i).len() as u64 + 1;
    }
    if args.envc == 0 {
        word(0);
    }
    word(0);
    for (k, v) in auxv {
        word(k);
        word(v);
    }
    word(AT_NULL);
    word(0);
    low.resize((random_addr - sp) as usize, 0);
    low.extend_from_slice(&rnd);
    low.extend_from_slice(b"x86_64\0");
    if space.write(sp, &low) == low.len() {
        Ok(sp)
    } else {
        Err(ExecError::NoMemory)
    }
}
