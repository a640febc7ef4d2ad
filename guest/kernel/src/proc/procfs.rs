//! `/proc`: the kernel's state as files, in the formats Linux gives them,
//! for what ordinary tools read (busybox `ps`, `free`, `uptime`, glibc's
//! `pthread_getattr_np` reading `/proc/self/maps`).
//!
//! - `/proc/self` → the calling process's directory;
//! - `/proc/PID/`: `stat`, `status`, `statm`, `cmdline`, `environ`,
//!   `comm`, `maps`, `mounts`, `mountinfo`, `exe`, `cwd`, `root`, `fd/` (a
//!   magic link per descriptor: following it opens the file itself, as on
//!   Linux, so an unlinked file or a pipe end opens again), `task/PID/`
//!   (the one thread: the same files);
//! - `/proc/meminfo`, `cpuinfo`, `uptime`, `loadavg`, `mounts`, `stat`,
//!   `version`, `filesystems`.
//!
//! Where the state comes from: the `Inode` methods get no kernel context,
//! so procfs holds what it reads, shared (no global, no pointer to the
//! kernel): the registry of per-process records ([`crate::proc::task`],
//! kept current by `proc/` as Linux's `task_struct` is reachable from its
//! procfs), the physical page allocator, the heap's counters, the host
//! pool's size, and (weakly: procfs is mounted in it) the mount table.
//!
//! Which process `/proc/self` names: the registry's `current`, which the
//! system-call dispatcher sets before each call (Linux's `current`). The
//! alternative, rewriting `/proc/self` at the system-call layer, would miss
//! the paths that reach it through a symbolic link (`/dev/fd`,
//! `/dev/stdin`), a directory descriptor of `/proc`, or `..`, and
//! `readlink("/proc/self")` must give the pid; with `current` the VFS needs
//! nothing new. The kernel runs one call at a time, so `current` is exact.
//!
//! Inodes are made on lookup and name what they show (a pid, a file);
//! they hold no reference to a process, so a file kept open after its
//! process is reaped reads as `ESRCH`, a lookup below its directory is
//! `ESRCH`, and `/proc/PID` itself is `ENOENT`.
//! A file's text is made on its first read and kept for that open file (a
//! snapshot per open, as Linux's seq_file): each `open` looks the name up
//! again and so gets a fresh inode.

use alloc::rc::{Rc, Weak};
use alloc::string::String;
use alloc::vec::Vec;
use core::any::Any;
use core::cell::RefCell;
use core::fmt::Write;

use super::task::{TaskInfo, TasksRef};
use super::{Pid, State};
use crate::fs::vfs::{DirEntry, Inode, InodeRef, Kind, Metadata, Mount, Sink};
use crate::mm::physmem::Frames;
use crate::mm::MemStats;
use guestlib::hypercall;
use linux_raw_sys::general::{O_ACCMODE, O_RDONLY, O_WRONLY};
use vkernel_abi::layout::PAGE_SIZE;
use vkernel_abi::Errno;

/// What procfs reads, given at boot.
pub struct Sources {
    /// The per-process records, and who is running.
    pub tasks: TasksRef,
    /// The physical page allocator (memory figures).
    pub frames: Frames,
    /// The host pool's size when process memory lives there, else 0.
    pub pool_bytes: u64,
}

struct ProcFs {
    src: Sources,
    mounts: Weak<RefCell<Vec<Mount>>>,
    /// Wall-clock time at boot (the monotonic clock's zero), ns.
    boot_realtime_ns: u64,
}

impl ProcFs {
    /// The process of task `tid` (itself once gone).
    fn tgid_of(&self, tid: Pid) -> Pid {
        self.src.tasks.get(tid).map_or(tid, |t| t.tgid.get())
    }
}

/// A new procfs; its root directory.
pub fn new(src: Sources, mounts: Weak<RefCell<Vec<Mount>>>) -> InodeRef {
    let boot_realtime_ns = hypercall::realtime_ns().saturating_sub(hypercall::clock_ns());
    let fs = Rc::new(ProcFs {
        src,
        mounts,
        boot_realtime_ns,
    });
    node(&fs, What::Root)
}

/// Bytes the tmpfs mounts' files hold (`Shmem`).
pub fn shmem_bytes(mounts: &[Mount]) -> u64 {
    mounts
        .iter()
        .filter(|m| m.fstype == "tmpfs" || m.fstype == "rootfs")
        .map(|m| m.root.usage().0)
        .sum()
}

/// Files at the top.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Global {
    Meminfo,
    Cpuinfo,
    Uptime,
    Loadavg,
    Mounts,
    Stat,
    Version,
    Filesystems,
}

const GLOBALS: [(&[u8], Global); 8] = [
    (b"cpuinfo", Global::Cpuinfo),
    (b"filesystems", Global::Filesystems),
    (b"loadavg", Global::Loadavg),
    (b"meminfo", Global::Meminfo),
    (b"mounts", Global::Mounts),
    (b"stat", Global::Stat),
    (b"uptime", Global::Uptime),
    (b"version", Global::Version),
];

/// Files of a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PidFile {
    Stat,
    Status,
    Statm,
    Cmdline,
    Environ,
    Comm,
    Maps,
    Mounts,
    Mountinfo,
}

/// Links of a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PidLink {
    Exe,
    Cwd,
    Root,
}

/// What a process directory holds.
#[derive(Clone, Copy)]
enum PidEntry {
    File(PidFile),
    Link(PidLink),
    FdDir,
    TaskDir,
}

const PID_ENTRIES: [(&[u8], PidEntry); 14] = [
    (b"cmdline", PidEntry::File(PidFile::Cmdline)),
    (b"comm", PidEntry::File(PidFile::Comm)),
    (b"cwd", PidEntry::Link(PidLink::Cwd)),
    (b"environ", PidEntry::File(PidFile::Environ)),
    (b"exe", PidEntry::Link(PidLink::Exe)),
    (b"fd", PidEntry::FdDir),
    (b"maps", PidEntry::File(PidFile::Maps)),
    (b"mountinfo", PidEntry::File(PidFile::Mountinfo)),
    (b"mounts", PidEntry::File(PidFile::Mounts)),
    (b"root", PidEntry::Link(PidLink::Root)),
    (b"stat", PidEntry::File(PidFile::Stat)),
    (b"statm", PidEntry::File(PidFile::Statm)),
    (b"status", PidEntry::File(PidFile::Status)),
    (b"task", PidEntry::TaskDir),
];

/// What an inode shows.
#[derive(Clone, Copy)]
enum What {
    Root,
    SelfLink,
    Global(Global),
    PidDir(Pid),
    PidFile(Pid, PidFile),
    PidLink(Pid, PidLink),
    FdDir(Pid),
    FdLink(Pid, u32),
    /// `/proc/PID/task`, and its one thread's directory (threads share
    /// the process's files).
    TaskDir(Pid),
    Thread(Pid),
}

impl What {
    /// Inode numbers: small ones for the top, `pid << 32 | n` below a
    /// process directory, so that `(dev, ino)` names one object.
    fn ino(self) -> u64 {
        let per = |pid: Pid, n: u64| ((pid as u64) << 32) | n;
        match self {
            What::Root => 1,
            What::SelfLink => 2,
            What::Global(g) => 16 + g as u64,
            What::PidDir(p) => per(p, 1),
            What::PidFile(p, f) => per(p, 0x10 + f as u64),
            What::PidLink(p, l) => per(p, 0x20 + l as u64),
            What::FdDir(p) => per(p, 0x30),
            What::TaskDir(p) => per(p, 0x31),
            What::Thread(p) => per(p, 0x32),
            What::FdLink(p, fd) => per(p, 0x1_0000 + fd as u64),
        }
    }

    fn pid(self) -> Option<Pid> {
        match self {
            What::PidDir(p)
            | What::PidFile(p, _)
            | What::PidLink(p, _)
            | What::FdDir(p)
            | What::FdLink(p, _)
            | What::TaskDir(p)
            | What::Thread(p) => Some(p),
            _ => None,
        }
    }

    fn kind(self) -> Kind {
        match self {
            What::Root | What::PidDir(_) | What::FdDir(_) | What::TaskDir(_) | What::Thread(_) => {
                Kind::Directory
            }
            What::SelfLink | What::PidLink(..) | What::FdLink(..) => Kind::Symlink,
            What::Global(_) | What::PidFile(..) => Kind::Regular,
        }
    }
}

/// A procfs inode.
pub struct Node {
    fs: Rc<ProcFs>,
    what: What,
    /// Change time: the process's start (its files), or boot.
    time_ns: u64,
    /// Permission bits of an fd link (`lr-x` for a read-only file).
    perm: u32,
    /// The text, made on the first read of this open file.
    text: RefCell<Option<Vec<u8>>>,
}

fn node(fs: &Rc<ProcFs>, what: What) -> InodeRef {
    let start = what
        .pid()
        .and_then(|p| fs.src.tasks.get(p))
        .map_or(0, |t| t.start_ns);
    let perm = match what {
        What::Root | What::PidDir(_) | What::TaskDir(_) | What::Thread(_) => 0o555,
        What::FdDir(_) => 0o500,
        What::SelfLink | What::PidLink(..) => 0o777,
        What::FdLink(pid, fd) => {
            let flags = fd_file(fs, pid, fd).map_or(O_RDONLY, |f| f.flags.get()) & O_ACCMODE;
            match flags {
                O_RDONLY => 0o500,
                O_WRONLY => 0o300,
                _ => 0o700,
            }
        }
        What::PidFile(_, PidFile::Environ) => 0o400,
        What::Global(_) | What::PidFile(..) => 0o444,
    };
    Rc::new(Node {
        fs: fs.clone(),
        what,
        time_ns: fs.boot_realtime_ns + start,
        perm,
        text: RefCell::new(None),
    })
}

/// The open file behind descriptor `fd` of `pid`.
fn fd_file(fs: &ProcFs, pid: Pid, fd: u32) -> Option<Rc<crate::fs::file::OpenFile>> {
    let t = fs.src.tasks.get(pid)?;
    let files = t.files.borrow().upgrade()?;
    let table = files.try_borrow().ok()?;
    table.get(fd as i32).ok()
}

/// The open descriptors of `pid` (none once it is dead).
fn open_fds(t: &TaskInfo) -> Vec<u32> {
    let Some(files) = t.files.borrow().upgrade() else {
        return Vec::new();
    };
    let Ok(table) = files.try_borrow() else {
        return Vec::new();
    };
    table.open_fds().map(|(i, _)| i as u32).collect()
}

/// A pid as its directory is named: decimal digits, no leading zero.
fn parse_pid(name: &[u8]) -> Option<Pid> {
    if name.is_empty() || name.len() > 10 || name[0] == b'0' || !name.iter().all(u8::is_ascii_digit)
    {
        return None;
    }
    let s = core::str::from_utf8(name).ok()?;
    s.parse::<Pid>().ok()
}

fn pid_entry(pid: Pid, e: PidEntry) -> What {
    match e {
        PidEntry::File(f) => What::PidFile(pid, f),
        PidEntry::Link(l) => What::PidLink(pid, l),
        PidEntry::FdDir => What::FdDir(pid),
        PidEntry::TaskDir => What::TaskDir(pid),
    }
}

fn dirent(what: What, name: &[u8]) -> DirEntry {
    DirEntry {
        ino: what.ino(),
        kind: what.kind(),
        name: name.to_vec(),
    }
}

impl Node {
    fn task(&self, pid: Pid) -> Result<Rc<TaskInfo>, Errno> {
        self.fs.src.tasks.get(pid).ok_or(Errno::ESRCH)
    }

    /// The text of a file.
    fn generate(&self) -> Result<Vec<u8>, Errno> {
        let mut out = String::new();
        match self.what {
            What::Global(g) => self.global(g, &mut out),
            What::PidFile(pid, f) => {
                let t = self.task(pid)?;
                match f {
                    PidFile::Cmdline => return Ok(t.cmdline.borrow().to_vec()),
                    PidFile::Environ => return Ok(t.environ.borrow().to_vec()),
                    PidFile::Comm => {
                        let mut c = t.comm.borrow().clone();
                        c.push(b'\n');
                        return Ok(c);
                    }
                    PidFile::Stat => stat(&t, &mut out),
                    PidFile::Status => {
                        let threads = self.fs.src.tasks.threads(t.tgid.get()).len();
                        status(&t, threads, &mut out)
                    }
                    PidFile::Statm => {
                        let v = VmFigures::of(&t);
                        let _ = writeln!(
                            out,
                            "{} 0 0 {} 0 {} 0",
                            v.size / PAGE_SIZE,
                            v.exe / PAGE_SIZE,
                            v.data / PAGE_SIZE
                        );
                    }
                    PidFile::Maps => maps(&t, &mut out),
                    PidFile::Mounts => self.mounts(&mut out, false),
                    PidFile::Mountinfo => self.mounts(&mut out, true),
                }
            }
            _ => return Err(Errno::EINVAL),
        }
        Ok(out.into_bytes())
    }

    /// `/proc/mounts` (`source point type options 0 0`), or with `info`
    /// `/proc/PID/mountinfo` (`id parent major:minor root point options -
    /// type source super-options`).
    fn mounts(&self, out: &mut String, info: bool) {
        let Some(table) = self.fs.mounts.upgrade() else {
            return;
        };
        let Ok(table) = table.try_borrow() else {
            return;
        };
        for (i, m) in table.iter().enumerate() {
            // Per-mount options, and the file system's own.
            let (opts, fs_opts) = match m.fstype {
                "proc" => ("rw,nosuid,nodev,noexec,relatime", ""),
                "devtmpfs" => ("rw,nosuid,relatime", ",mode=755"),
                "devpts" => ("rw,relatime", ",mode=600,ptmxmode=000"),
                _ => ("rw,relatime", ""),
            };
            let path = String::from_utf8_lossy(&m.path);
            let (fstype, source) = (m.fstype, m.source);
            if info {
                // Every mount hangs off the root (id 1, its own parent).
                let dev = m.root.meta().dev;
                let (major, minor) = (dev >> 8, dev & 0xff);
                let _ = writeln!(
                    out,
                    "{} 1 {major}:{minor} / {path} {opts} - {fstype} {source} rw{fs_opts}",
                    i + 1
                );
            } else {
                let _ = writeln!(out, "{source} {path} {fstype} {opts}{fs_opts} 0 0");
            }
        }
    }

    fn mem(&self) -> MemStats {
        let shmem = self
            .fs
            .mounts
            .upgrade()
            .and_then(|t| t.try_borrow().ok().map(|t| shmem_bytes(&t)))
            .unwrap_or(0);
        MemStats::now(&self.fs.src.frames, self.fs.src.pool_bytes, shmem)
    }

    fn global(&self, g: Global, out: &mut String) {
        let tasks = &self.fs.src.tasks;
        match g {
            Global::Meminfo => meminfo(&self.mem(), out),
            Global::Cpuinfo => cpuinfo(out),
            Global::Uptime => {
                let cs = hypercall::clock_ns() / 10_000_000;
                let _ = writeln!(out, "{}.{:02} 0.00", cs / 100, cs % 100);
            }
            Global::Loadavg => {
                let (all, running) = tasks.counts();
                let _ = writeln!(
                    out,
                    "0.00 0.00 0.00 {running}/{all} {}",
                    tasks.last_pid.get()
                );
            }
            Global::Mounts => self.mounts(out, false),
            Global::Stat => {
                let (all, running) = tasks.counts();
                let ticks = hypercall::clock_ns() / 10_000_000;
                let _ = writeln!(out, "cpu  0 0 0 {ticks} 0 0 0 0 0 0");
                let _ = writeln!(out, "cpu0 0 0 0 {ticks} 0 0 0 0 0 0");
                let _ = writeln!(out, "intr 0\nctxt 0");
                let _ = writeln!(out, "btime {}", self.fs.boot_realtime_ns / 1_000_000_000);
                let _ = writeln!(out, "processes {}", tasks.last_pid.get());
                let _ = writeln!(out, "procs_running {running}");
                let _ = writeln!(out, "procs_blocked {}", all - running);
            }
            Global::Version => {
                out.push_str("Linux version 6.1.0-vkernel (vkernel) #1 vkernel guest kernel\n");
            }
            Global::Filesystems => {
                out.push_str(
                    "nodev\trootfs\nnodev\ttmpfs\nnodev\tdevtmpfs\nnodev\tproc\nnodev\tpipefs\n",
                );
            }
        }
    }
}

impl Inode for Node {
    fn meta(&self) -> Metadata {
        let kind = self.what.kind();
        Metadata {
            dev: crate::fs::DEV_PROC,
            ino: self.what.ino(),
            kind,
            perm: self.perm,
            nlink: if kind == Kind::Directory { 2 } else { 1 },
            uid: 0,
            gid: 0,
            // As on Linux: files are of size 0 (read to the end), fd links 64.
            size: if matches!(self.what, What::FdLink(..)) {
                64
            } else {
                0
            },
            rdev: 0,
            blocks: 0,
            atime_ns: self.time_ns,
            mtime_ns: self.time_ns,
            ctime_ns: self.time_ns,
        }
    }

    fn fs_magic(&self) -> u64 {
        linux_raw_sys::general::PROC_SUPER_MAGIC as u64
    }

    fn lookup(&self, name: &[u8]) -> Result<InodeRef, Errno> {
        let fs = &self.fs;
        let what = match self.what {
            What::Root => {
                if name == b"self" {
                    What::SelfLink
                } else if let Some((_, g)) = GLOBALS.iter().find(|(n, _)| *n == name) {
                    What::Global(*g)
                } else {
                    let pid = parse_pid(name).ok_or(Errno::ENOENT)?;
                    fs.src.tasks.get(pid).ok_or(Errno::ENOENT)?;
                    What::PidDir(pid)
                }
            }
            What::PidDir(pid) | What::Thread(pid) => {
                // A directory held open past its process's end (Linux: ESRCH).
                fs.src.tasks.get(pid).ok_or(Errno::ESRCH)?;
                let thread = matches!(self.what, What::Thread(_));
                let (_, e) = PID_ENTRIES
                    .iter()
                    .filter(|(_, e)| !thread || !matches!(e, PidEntry::TaskDir))
                    .find(|(n, _)| *n == name)
                    .ok_or(Errno::ENOENT)?;
                pid_entry(pid, *e)
            }
            What::TaskDir(pid) => {
                let tid = parse_pid(name).ok_or(Errno::ENOENT)?;
                let t = fs.src.tasks.get(tid).ok_or(Errno::ENOENT)?;
                if t.tgid.get() != pid {
                    return Err(Errno::ENOENT);
                }
                What::Thread(tid)
            }
            What::FdDir(pid) => {
                let fd = match name {
                    b"0" => 0,
                    _ => parse_pid(name).ok_or(Errno::ENOENT)?,
                };
                fd_file(fs, pid, fd).ok_or(Errno::ENOENT)?;
                What::FdLink(pid, fd)
            }
            _ => return Err(Errno::ENOTDIR),
        };
        Ok(node(fs, what))
    }

    fn parent(&self) -> Option<InodeRef> {
        Some(match self.what {
            What::FdDir(pid) | What::TaskDir(pid) => node(&self.fs, What::PidDir(pid)),
            What::Thread(tid) => node(&self.fs, What::TaskDir(self.fs.tgid_of(tid))),
            _ => node(&self.fs, What::Root),
        })
    }

    fn readdir(&self, index: u64) -> Result<Option<DirEntry>, Errno> {
        let fs = &self.fs;
        let parent = match self.what {
            What::FdDir(pid) | What::TaskDir(pid) => What::PidDir(pid),
            What::Thread(tid) => What::TaskDir(fs.tgid_of(tid)),
            _ => What::Root,
        };
        match index {
            0 => return Ok(Some(dirent(self.what, b"."))),
            1 => return Ok(Some(dirent(parent, b".."))),
            _ => {}
        }
        let i = (index - 2) as usize;
        Ok(match self.what {
            What::Root => {
                if i == 0 {
                    Some(dirent(What::SelfLink, b"self"))
                } else if let Some((n, g)) = GLOBALS.get(i - 1) {
                    Some(dirent(What::Global(*g), n))
                } else {
                    let pids = fs.src.tasks.pids();
                    pids.get(i - 1 - GLOBALS.len()).map(|&p| {
                        let mut name = String::new();
                        let _ = write!(name, "{p}");
                        dirent(What::PidDir(p), name.as_bytes())
                    })
                }
            }
            What::PidDir(pid) | What::Thread(pid) => {
                fs.src.tasks.get(pid).ok_or(Errno::ENOENT)?;
                let thread = matches!(self.what, What::Thread(_));
                PID_ENTRIES
                    .iter()
                    .filter(|(_, e)| !thread || !matches!(e, PidEntry::TaskDir))
                    .nth(i)
                    .map(|(n, e)| dirent(pid_entry(pid, *e), n))
            }
            What::TaskDir(pid) => {
                fs.src.tasks.get(pid).ok_or(Errno::ENOENT)?;
                fs.src.tasks.threads(pid).get(i).map(|&tid| {
                    let mut name = String::new();
                    let _ = write!(name, "{tid}");
                    dirent(What::Thread(tid), name.as_bytes())
                })
            }
            What::FdDir(pid) => {
                let t = fs.src.tasks.get(pid).ok_or(Errno::ENOENT)?;
                open_fds(&t).get(i).map(|&fd| {
                    let mut name = String::new();
                    let _ = write!(name, "{fd}");
                    dirent(What::FdLink(pid, fd), name.as_bytes())
                })
            }
            _ => return Err(Errno::ENOTDIR),
        })
    }

    fn read_at(&self, off: u64, len: usize, out: Sink) -> Result<usize, Errno> {
        if self.what.kind() != Kind::Regular {
            return Err(Errno::EISDIR);
        }
        let mut text = self.text.borrow_mut();
        if text.is_none() {
            *text = Some(self.generate()?);
        }
        let bytes = text.as_deref().unwrap_or(&[]);
        let start = (off.min(bytes.len() as u64)) as usize;
        let end = start + len.min(bytes.len() - start);
        if start == end {
            return Ok(0);
        }
        out(&[&bytes[start..end]])
    }

    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        match self.what {
            What::SelfLink => {
                let pid = self.fs.src.tasks.current.get();
                if pid == 0 {
                    return Err(Errno::ENOENT);
                }
                let mut s = String::new();
                let _ = write!(s, "{pid}");
                Ok(s.into_bytes())
            }
            What::PidLink(pid, l) => {
                let t = self.fs.src.tasks.get(pid).ok_or(Errno::ENOENT)?;
                let dead = t.state.get() == State::Zombie;
                let target = match l {
                    PidLink::Exe => t.exe.borrow().clone(),
                    PidLink::Cwd => t.cwd.borrow().clone(),
                    PidLink::Root => alloc::vec![b'/'],
                };
                if dead || target.is_empty() {
                    return Err(Errno::ENOENT);
                }
                Ok(target)
            }
            What::FdLink(pid, fd) => {
                let f = fd_file(&self.fs, pid, fd).ok_or(Errno::ENOENT)?;
                Ok(f.path.clone())
            }
            _ => Err(Errno::EINVAL),
        }
    }

    fn follow_magic(&self) -> Option<Result<InodeRef, Errno>> {
        let What::FdLink(pid, fd) = self.what else {
            return None;
        };
        let Some(f) = fd_file(&self.fs, pid, fd) else {
            return Some(Err(Errno::ENOENT));
        };
        Some(Ok(match (f.inode(), f.device()) {
            (Some(node), _) => node.clone(),
            (None, Some(dev)) => Rc::new(Anon {
                dev: dev.clone(),
                meta: f.meta(),
            }),
            (None, None) => return Some(Err(Errno::ENOENT)),
        }))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// What `/proc/PID/fd/N` leads to when the open file has no name: a pipe
/// end or a console. Opening it opens the device again (a pipe: a new end
/// of the same pipe, as Linux's fifo-like reopen).
struct Anon {
    dev: Rc<dyn crate::fs::device::Device>,
    meta: Metadata,
}

impl Inode for Anon {
    fn meta(&self) -> Metadata {
        let mut m = self.meta;
        // Only devices and fifos open as devices: a console that is a
        // host file or socket shows as the character device it is here.
        if !matches!(m.kind, Kind::Fifo | Kind::CharDevice) {
            m.kind = Kind::CharDevice;
        }
        m
    }

    fn device(&self) -> Option<Rc<dyn crate::fs::device::Device>> {
        Some(self.dev.clone())
    }

    fn fs_magic(&self) -> u64 {
        match self.meta.kind {
            Kind::Fifo => linux_raw_sys::general::PIPEFS_MAGIC as u64,
            _ => linux_raw_sys::general::TMPFS_MAGIC as u64,
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

// ---- the files' text --------------------------------------------------------

/// Linux's state letter and its name in `status`.
fn state_of(s: State) -> (char, &'static str) {
    match s {
        State::Runnable | State::Free => ('R', "running"),
        State::Blocked { .. } => ('S', "sleeping"),
        State::Stopped => ('T', "stopped"),
        State::Zombie => ('Z', "zombie"),
    }
}

/// A process's memory, from its address space's regions, in bytes.
#[derive(Default)]
struct VmFigures {
    size: u64,
    exe: u64,
    data: u64,
    stack: u64,
    start_code: u64,
    end_code: u64,
    start_stack: u64,
    brk_start: u64,
    brk: u64,
}

impl VmFigures {
    fn of(t: &TaskInfo) -> VmFigures {
        let mut v = VmFigures::default();
        let Some(space) = t.space.borrow().upgrade() else {
            return v;
        };
        let Ok(space) = space.try_borrow() else {
            return v;
        };
        v.brk_start = space.brk_start;
        v.brk = space.brk;
        for r in space.regions() {
            let len = r.end - r.start;
            v.size += len;
            let exec = r.prot & linux_raw_sys::general::PROT_EXEC as u64 != 0;
            let write = r.prot & linux_raw_sys::general::PROT_WRITE as u64 != 0;
            if r.end == super::exec::STACK_TOP {
                v.stack += len;
                v.start_stack = r.end;
            } else if r.end <= space.brk_start && exec {
                v.exe += len;
                if v.start_code == 0 {
                    v.start_code = r.start;
                }
                v.end_code = r.end;
            } else if write {
                v.data += len;
            }
        }
        v
    }
}

fn stat(t: &TaskInfo, out: &mut String) {
    let (state, _) = state_of(t.state.get());
    let v = VmFigures::of(t);
    let start_ticks = t.start_ns / 10_000_000;
    let exit_code = if state == 'Z' { t.exit_status.get() } else { 0 };
    // Clock ticks (USER_HZ 100).
    let cpu = t.cpu.get();
    let _ = writeln!(
        out,
        "{} ({}) {state} {} {} {} 0 -1 0 0 0 0 0 {} {} {} {} {} {} 1 0 {start_ticks} {} 0 \
         18446744073709551615 {} {} {} 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 0 0 {} 0 0 0 0 {exit_code}",
        t.pid,
        String::from_utf8_lossy(&t.comm.borrow()),
        t.ppid.get(),
        t.pgid.get(),
        t.sid.get(),
        cpu[0] / 10_000_000,
        cpu[1] / 10_000_000,
        cpu[2] / 10_000_000,
        cpu[3] / 10_000_000,
        // priority (20 + nice for a normal task) and nice.
        20 + t.nice.get(),
        t.nice.get(),
        v.size,
        v.start_code,
        v.end_code,
        v.start_stack,
        v.brk_start,
    );
}

fn status(t: &TaskInfo, threads: usize, out: &mut String) {
    let (state, name) = state_of(t.state.get());
    let pid = t.pid;
    let tgid = t.tgid.get();
    let _ = writeln!(out, "Name:\t{}", String::from_utf8_lossy(&t.comm.borrow()));
    let _ = writeln!(out, "Umask:\t{:04o}", t.umask.get());
    let _ = writeln!(out, "State:\t{state} ({name})");
    let _ = writeln!(
        out,
        "Tgid:\t{tgid}\nNgid:\t0\nPid:\t{pid}\nPPid:\t{}",
        t.ppid.get()
    );
    let c = t.creds.get();
    let _ = writeln!(
        out,
        "TracerPid:\t0\nUid:\t{}\t{}\t{}\t{}\nGid:\t{}\t{}\t{}\t{}",
        c.ruid, c.euid, c.suid, c.fsuid, c.rgid, c.egid, c.sgid, c.fsgid
    );
    let fdsize = open_fds(t)
        .last()
        .map_or(64, |&m| (m as u64 + 1).next_multiple_of(64));
    let _ = writeln!(out, "FDSize:\t{fdsize}\nGroups:\t");
    let _ = writeln!(
        out,
        "NStgid:\t{tgid}\nNSpid:\t{pid}\nNSpgid:\t{}\nNSsid:\t{}",
        t.pgid.get(),
        t.sid.get()
    );
    if state != 'Z' {
        let v = VmFigures::of(t);
        let kb = |b: u64| b / 1024;
        let _ = writeln!(out, "VmPeak:\t{:8} kB", kb(v.size));
        let _ = writeln!(out, "VmSize:\t{:8} kB", kb(v.size));
        let _ = writeln!(out, "VmLck:\t{:8} kB\nVmPin:\t{:8} kB", 0, 0);
        // Resident pages are not counted (yet): 0, as for a swapped process.
        let _ = writeln!(out, "VmHWM:\t{:8} kB\nVmRSS:\t{:8} kB", 0, 0);
        let _ = writeln!(out, "VmData:\t{:8} kB", kb(v.data));
        let _ = writeln!(out, "VmStk:\t{:8} kB", kb(v.stack));
        let _ = writeln!(out, "VmExe:\t{:8} kB", kb(v.exe));
        let _ = writeln!(
            out,
            "VmLib:\t{:8} kB\nVmPTE:\t{:8} kB\nVmSwap:\t{:8} kB",
            0, 0, 0
        );
    }
    let _ = writeln!(
        out,
        "Threads:\t{}\nSigQ:\t{}/{}",
        threads.max(1),
        (t.signals.get()[0] | t.signals.get()[1]).count_ones(),
        super::signal::MAX_QUEUED
    );
    let [pending, shared, blocked, ignored, caught] = t.signals.get();
    for (s, v) in [
        ("SigPnd", pending),
        ("ShdPnd", shared),
        ("SigBlk", blocked),
        ("SigIgn", ignored),
        ("SigCgt", caught),
        ("CapInh", c.cap_inheritable),
        ("CapPrm", c.cap_permitted),
        ("CapEff", c.cap_effective),
        ("CapBnd", c.cap_bounding),
        ("CapAmb", c.cap_ambient),
    ] {
        let _ = writeln!(out, "{s}:\t{v:016x}");
    }
    let _ = writeln!(out, "NoNewPrivs:\t0\nSeccomp:\t0");
    let _ = writeln!(
        out,
        "Cpus_allowed:\t1\nCpus_allowed_list:\t0\nMems_allowed:\t1\nMems_allowed_list:\t0"
    );
    let _ = writeln!(
        out,
        "voluntary_ctxt_switches:\t0\nnonvoluntary_ctxt_switches:\t0"
    );
}

/// `/proc/PID/maps`: `start-end perms offset dev inode`, padded to column
/// 73 before a name, as Linux's `show_map_vma`. A file mapping shows its
/// file (` (deleted)` once unlinked; shared anonymous memory is a deleted
/// `/dev/zero`). The program's own image was copied in, not mapped: its
/// regions (below the break's start) are named by its path with offset
/// and inode 0; the break is `[heap]`, the stack `[stack]`.
fn maps(t: &TaskInfo, out: &mut String) {
    let Some(space) = t.space.borrow().upgrade() else {
        return;
    };
    let Ok(space) = space.try_borrow() else {
        return;
    };
    let exe = t.exe.borrow();
    let exe = String::from_utf8_lossy(&exe);
    let heap = space.brk_start.next_multiple_of(PAGE_SIZE);
    let line = |out: &mut String, start: u64, end: u64, prot: u64, name: &str| {
        file_line(out, start, end, prot, None, name)
    };
    for r in space.regions() {
        if let Some(f) = r.file() {
            let (dev, ino, deleted) = f.object.identity();
            let mut name = String::from_utf8_lossy(&f.name).into_owned();
            if deleted {
                name.push_str(" (deleted)");
            }
            let id = (f.pgoff * PAGE_SIZE, dev, ino, f.shared);
            file_line(out, r.start, r.end, r.prot, Some(id), &name);
            continue;
        }
        if r.end == super::exec::STACK_TOP {
            line(out, r.start, r.end, r.prot, "[stack]");
        } else if r.end <= heap {
            line(out, r.start, r.end, r.prot, &exe);
        } else if r.start < heap {
            // The image's last segment and the break, merged: split.
            line(out, r.start, heap, r.prot, &exe);
            line(out, heap, r.end, r.prot, "[heap]");
        } else if r.start == heap && space.brk > space.brk_start {
            line(out, r.start, r.end, r.prot, "[heap]");
        } else {
            line(out, r.start, r.end, r.prot, "");
        }
    }
}

/// One line of `/proc/PID/maps`; `file` is (offset, device, inode,
/// shared) of a file mapping.
fn file_line(
    out: &mut String,
    start: u64,
    end: u64,
    prot: u64,
    file: Option<(u64, u64, u64, bool)>,
    name: &str,
) {
    use linux_raw_sys::general::{PROT_EXEC, PROT_READ, PROT_WRITE};
    let (off, dev, ino, shared) = file.unwrap_or((0, 0, 0, false));
    // Linux's MAJOR and MINOR of a 32-bit device number.
    let (major, minor) = ((dev >> 8) & 0xfff, (dev & 0xff) | ((dev >> 12) & 0xfff00));
    {
        let at = out.len();
        let _ = write!(
            out,
            "{start:08x}-{end:08x} {}{}{}{} {off:08x} {major:02x}:{minor:02x} {ino} ",
            if prot & PROT_READ as u64 != 0 {
                'r'
            } else {
                '-'
            },
            if prot & PROT_WRITE as u64 != 0 {
                'w'
            } else {
                '-'
            },
            if prot & PROT_EXEC as u64 != 0 {
                'x'
            } else {
                '-'
            },
            if shared { 's' } else { 'p' },
        );
        if !name.is_empty() {
            while out.len() - at < 73 {
                out.push(' ');
            }
            out.push_str(name);
        }
        out.push('\n');
    }
}

/// `/proc/meminfo`: Linux's `show_val_kb` lines (the label padded to 16
/// columns, the figure right-aligned in 8, then ` kB`).
fn meminfo(m: &MemStats, out: &mut String) {
    let kb = |b: u64| b / 1024;
    let lines: [(&str, u64); 24] = [
        ("MemTotal:", m.total),
        ("MemFree:", m.free),
        // tmpfs pages cannot be reclaimed without swap; the host files'
        // cached pages can.
        ("MemAvailable:", m.free + m.file_cache),
        ("Buffers:", 0),
        ("Cached:", m.shmem + m.file_cache),
        ("SwapCached:", 0),
        ("Active:", m.anon + m.shmem),
        ("Inactive:", m.file_cache),
        ("Active(anon):", m.anon + m.shmem),
        ("Inactive(anon):", 0),
        ("Active(file):", 0),
        ("Inactive(file):", m.file_cache),
        ("Unevictable:", 0),
        ("Mlocked:", 0),
        ("SwapTotal:", 0),
        ("SwapFree:", 0),
        ("Dirty:", 0),
        ("Writeback:", 0),
        ("AnonPages:", m.anon),
        ("Mapped:", 0),
        ("Shmem:", m.shmem),
        ("Slab:", m.heap_used),
        ("SReclaimable:", 0),
        ("SUnreclaim:", m.heap_used),
    ];
    for (label, bytes) in lines {
        let _ = writeln!(out, "{label:<16}{:>8} kB", kb(bytes));
    }
    let tail: [(&str, u64); 5] = [
        ("KernelStack:", 0),
        ("PageTables:", 0),
        ("CommitLimit:", m.total),
        ("Committed_AS:", m.anon),
        ("VmallocTotal:", 0),
    ];
    for (label, bytes) in tail {
        let _ = writeln!(out, "{label:<16}{:>8} kB", kb(bytes));
    }
}

/// `/proc/cpuinfo` from CPUID, in Linux's layout (one processor).
fn cpuinfo(out: &mut String) {
    use core::arch::x86_64::__cpuid;
    let cpuid = |leaf: u32| __cpuid(leaf);
    let l0 = cpuid(0);
    let max = l0.eax;
    let mut vendor = [0u8; 12];
    vendor[..4].copy_from_slice(&l0.ebx.to_le_bytes());
    vendor[4..8].copy_from_slice(&l0.edx.to_le_bytes());
    vendor[8..].copy_from_slice(&l0.ecx.to_le_bytes());
    let l1 = cpuid(1);
    let base_family = (l1.eax >> 8) & 0xf;
    let family = if base_family == 0xf {
        base_family + ((l1.eax >> 20) & 0xff)
    } else {
        base_family
    };
    let model = if base_family == 0x6 || base_family == 0xf {
        ((l1.eax >> 4) & 0xf) | (((l1.eax >> 16) & 0xf) << 4)
    } else {
        (l1.eax >> 4) & 0xf
    };
    let stepping = l1.eax & 0xf;
    let ext_max = cpuid(0x8000_0000).eax;
    let mut brand = Vec::new();
    if ext_max >= 0x8000_0004 {
        for leaf in 0x8000_0002..=0x8000_0004u32 {
            let r = cpuid(leaf);
            for w in [r.eax, r.ebx, r.ecx, r.edx] {
                brand.extend_from_slice(&w.to_le_bytes());
            }
        }
    }
    let brand = String::from_utf8_lossy(&brand);
    let brand = brand.trim_matches(|c: char| c == '\0' || c == ' ');
    let (e81_ecx, e81_edx) = if ext_max >= 0x8000_0001 {
        let r = cpuid(0x8000_0001);
        (r.ecx, r.edx)
    } else {
        (0, 0)
    };
    let (l7_ebx, l7_ecx) = if max >= 7 {
        let r = core::arch::x86_64::__cpuid_count(7, 0);
        (r.ebx, r.ecx)
    } else {
        (0, 0)
    };
    let mhz = if max >= 0x16 { cpuid(0x16).eax } else { 0 };
    let (phys_bits, virt_bits) = if ext_max >= 0x8000_0008 {
        let a = cpuid(0x8000_0008).eax;
        (a & 0xff, (a >> 8) & 0xff)
    } else {
        (36, 48)
    };
    let clflush = ((l1.ebx >> 8) & 0xff) * 8;
    let mut flags = String::new();
    let mut add = |reg: u32, table: &[(u32, &str)]| {
        for (bit, name) in table {
            if reg & (1 << bit) != 0 {
                if !flags.is_empty() {
                    flags.push(' ');
                }
                flags.push_str(name);
            }
        }
    };
    add(
        l1.edx,
        &[
            (0, "fpu"),
            (1, "vme"),
            (2, "de"),
            (3, "pse"),
            (4, "tsc"),
            (5, "msr"),
            (6, "pae"),
            (7, "mce"),
            (8, "cx8"),
            (9, "apic"),
            (11, "sep"),
            (12, "mtrr"),
            (13, "pge"),
            (14, "mca"),
            (15, "cmov"),
            (16, "pat"),
            (17, "pse36"),
            (19, "clflush"),
            (23, "mmx"),
            (24, "fxsr"),
            (25, "sse"),
            (26, "sse2"),
            (27, "ss"),
            (28, "ht"),
        ],
    );
    add(
        e81_edx,
        &[
            (11, "syscall"),
            (20, "nx"),
            (26, "pdpe1gb"),
            (27, "rdtscp"),
            (29, "lm"),
        ],
    );
    add(
        l1.ecx,
        &[
            (0, "pni"),
            (1, "pclmulqdq"),
            (3, "monitor"),
            (9, "ssse3"),
            (12, "fma"),
            (13, "cx16"),
            (19, "sse4_1"),
            (20, "sse4_2"),
            (21, "x2apic"),
            (22, "movbe"),
            (23, "popcnt"),
            (25, "aes"),
            (26, "xsave"),
            (28, "avx"),
            (29, "f16c"),
            (30, "rdrand"),
            (31, "hypervisor"),
        ],
    );
    add(
        e81_ecx,
        &[
            (0, "lahf_lm"),
            (5, "abm"),
            (6, "sse4a"),
            (8, "3dnowprefetch"),
        ],
    );
    add(
        l7_ebx,
        &[
            (0, "fsgsbase"),
            (3, "bmi1"),
            (4, "hle"),
            (5, "avx2"),
            (7, "smep"),
            (8, "bmi2"),
            (9, "erms"),
            (10, "invpcid"),
            (11, "rtm"),
            (16, "avx512f"),
            (17, "avx512dq"),
            (18, "rdseed"),
            (19, "adx"),
            (20, "smap"),
            (23, "clflushopt"),
            (24, "clwb"),
            (29, "sha_ni"),
            (30, "avx512bw"),
            (31, "avx512vl"),
        ],
    );
    add(l7_ecx, &[(1, "avx512vbmi"), (2, "umip"), (4, "pku")]);
    let _ = writeln!(out, "processor\t: 0");
    let _ = writeln!(out, "vendor_id\t: {}", String::from_utf8_lossy(&vendor));
    let _ = writeln!(out, "cpu family\t: {family}\nmodel\t\t: {model}");
    let _ = writeln!(out, "model name\t: {brand}\nstepping\t: {stepping}");
    if mhz != 0 {
        let _ = writeln!(out, "cpu MHz\t\t: {mhz}.000");
    }
    let _ = writeln!(
        out,
        "physical id\t: 0\nsiblings\t: 1\ncore id\t\t: 0\ncpu cores\t: 1"
    );
    let _ = writeln!(out, "apicid\t\t: 0\ninitial apicid\t: 0");
    let _ = writeln!(
        out,
        "fpu\t\t: yes\nfpu_exception\t: yes\ncpuid level\t: {max}\nwp\t\t: yes"
    );
    let _ = writeln!(out, "flags\t\t: {flags}\nbugs\t\t:");
    if mhz != 0 {
        let _ = writeln!(out, "bogomips\t: {}.00", mhz * 2);
    }
    let _ = writeln!(
        out,
        "clflush size\t: {clflush}\ncache_alignment\t: {clflush}"
    );
    let _ = writeln!(
        out,
        "address sizes\t: {phys_bits} bits physical, {virt_bits} bits virtual"
    );
    let _ = writeln!(out, "power management:\n");
}
