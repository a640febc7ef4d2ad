//! The vkernel guest kernel.
//!
//! It runs in ring 3 in an address space the host built: RAM identity-mapped
//! (virtual = guest-physical), the trap area at `TRAP_AREA_BASE`
//! (supervisor-only, untouchable from here). Everything privileged is a
//! hypercall. The host enters `_start` with `rdi` = the boot-info address.
//!
//! Subsystems, each a folder: `proc` (the process table, scheduling
//! policy, exec, sleep and wakeup), `mm` (the heap, physical pages,
//! address spaces on the two pmaps, user copies), `fs` (the console and
//! the boot image), `syscall` (the Linux system-call table and the `sys_*`
//! functions, which depend on the subsystems, never the reverse). The
//! kernel's state is one [`kernel::Kernel`]; [`trap::run`] is its main
//! loop. Hypercalls, the console and the boot info come from `guestlib`,
//! shared with the test kernel (`guest/hctest`).
#![no_std]
#![no_main]

extern crate alloc;

mod chan;
mod deadline;
mod fs;
mod kernel;
mod mm;
mod param;
mod proc;
mod random;
mod syscall;
mod trap;
mod vexfault;

use alloc::rc::Rc;
use alloc::vec::Vec;

use fs::device::Console;
use fs::file::{Fd, Object, OpenFile};
use guestlib::bootinfo::{self, arg, Boot};
use guestlib::{eprintln, hypercall, println};
use kernel::Kernel;
use mm::{Mm, PmapKind};
use proc::exec::ArgBuf;
use proc::ProcTable;
use vkernel_abi::cpio::Archive;

guestlib::boot_entry!();

/// Kernel entry, called from `_start` on the boot stack.
#[no_mangle]
pub extern "C" fn kmain(boot_info_addr: u64) -> ! {
    let boot_entry_ns = hypercall::clock_ns();
    let boot = bootinfo::read(boot_info_addr);
    start_terminal(&boot);
    let boot_trace = boot
        .cmdline
        .split_ascii_whitespace()
        .any(|w| w == "boottrace");
    if boot_trace {
        eprintln!("boot: kernel entry at {boot_entry_ns} ns");
    }
    let mib = boot.info.mem_bytes >> 20;
    eprintln!(
        "vkernel guest kernel: {mib} MiB memory, cmdline \"{}\"",
        boot.cmdline
    );
    if let Some(status) = arg(boot.cmdline, "exit") {
        // Boot, list the image and exit: the boot path alone.
        list_image(boot.image);
        let status = status.parse::<i32>().unwrap_or(0);
        let uptime_us = hypercall::clock_ns() / 1000;
        println!("kernel: exiting with status {status} (host uptime {uptime_us} us)");
        hypercall::exit(status)
    }
    let mut k = boot_kernel(&boot, boot_trace);
    start_init(&mut k, &boot);
    trap::run(&mut k)
}

/// When the host's stdin is a terminal (in raw mode for the run), the
/// console becomes a terminal with a line discipline (`fs/tty.rs`), and
/// the kernel's own lines end in CR LF. Its output goes to the first of
/// stdout and stderr that is the terminal.
fn start_terminal(boot: &Boot) {
    use vkernel_abi::console_kind::TTY;
    let kind = |fd: u64| (boot.info.console_kinds >> (8 * fd)) as u8;
    if kind(0) != TTY {
        return;
    }
    guestlib::console::CRLF.store(true, core::sync::atomic::Ordering::Relaxed);
    let out = [1, 2].into_iter().find(|&fd| kind(fd) == TTY).unwrap_or(0);
    fs::tty::activate(out);
}

/// Sets up the heap and the kernel context from the command line: the
/// heap takes the first part of the RAM the host left free, physical pages
/// the rest.
fn boot_kernel(boot: &Boot, boot_trace: bool) -> Kernel {
    let kind = match arg(boot.cmdline, "pmap") {
        None | Some("host") => PmapKind::Host,
        Some("guest") => PmapKind::Guest,
        Some(other) => {
            eprintln!("kernel: pmap={other}: expected pmap=host or pmap=guest");
            hypercall::exit(126);
        }
    };
    // RAM above the image: the heap's first range, the physical pages,
    // the rest of the heap at the top (see mm/heap.rs).
    let heap_start = boot.info.free_start.next_multiple_of(4096);
    let heap_bytes = mm::heap::size_for(boot.info.mem_bytes);
    let first_bytes = heap_bytes.min(mm::heap::FIRST_BYTES);
    let frames_start = heap_start + first_bytes;
    let frames_end = boot.info.mem_bytes.saturating_sub(heap_bytes - first_bytes) & !0xfff;
    if frames_start >= frames_end {
        eprintln!("kernel: no room for the kernel heap: give the guest more --memory");
        hypercall::exit(126);
    }
    mm::heap::init(
        (heap_start, first_bytes),
        (frames_end, boot.info.mem_bytes - frames_end),
    );
    let (lo, hi) = param::SLICE_US_RANGE;
    let slice_us = arg(boot.cmdline, "slice_us")
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(param::SLICE_US, |us| us.clamp(lo, hi));
    let mm = Mm::new(kind, frames_start, frames_end, boot.info.pool_bytes);
    let tmpfs_bytes = match arg(boot.cmdline, "tmpfs_size").map(parse_size) {
        None => boot.info.mem_bytes / 2,
        Some(Some(b)) => b,
        Some(None) => {
            eprintln!("kernel: tmpfs_size=N[k|m|g] needs a size");
            hypercall::exit(126);
        }
    };
    let mut procs = ProcTable::new();
    // Linux sizes its task table from all of memory (MemTotal).
    procs.set_memory(mm.total_bytes() / vkernel_abi::layout::PAGE_SIZE);
    let procfs = proc::procfs::Sources {
        tasks: procs.tasks.clone(),
        frames: mm.frames(),
        pool_bytes: mm.user_pool_bytes(),
    };
    let proc_fs = |mounts| proc::procfs::new(procfs, mounts);
    let host = fs::HostDirs {
        root: arg(boot.cmdline, "root") == Some("host"),
        volumes: arg(boot.cmdline, "volumes")
            .map(|v| v.split(',').filter(|p| !p.is_empty()).collect())
            .unwrap_or_default(),
    };
    let vfs = match fs::boot(boot.image, &host, &mm.frames(), tmpfs_bytes, proc_fs) {
        Ok(v) => v,
        Err(bad) => {
            eprintln!("kernel: image member {:?} {}", bad.name, bad.problem);
            hypercall::exit(126);
        }
    };
    // Shared anonymous memory lives in files of an unmounted tmpfs, as
    // Linux's `shm_mnt`.
    let shm = fs::tmpfs::Tmpfs::new_root(fs::DEV_SHM, mm.frames(), tmpfs_bytes);
    Kernel {
        procs,
        mm,
        vfs,
        shm,
        unix_names: alloc::rc::Rc::new(fs::unix::Names::new()),
        slice_us,
        boot_trace,
    }
}

/// A size with an optional `k`, `m` or `g` suffix (as tmpfs's `size=`).
fn parse_size(v: &str) -> Option<u64> {
    let (num, shift) = match v.as_bytes().last()? {
        b'k' | b'K' => (&v[..v.len() - 1], 10),
        b'm' | b'M' => (&v[..v.len() - 1], 20),
        b'g' | b'G' => (&v[..v.len() - 1], 30),
        _ => (v, 0),
    };
    num.parse::<u64>().ok()?.checked_mul(1 << shift)
}

/// Loads init (`/init`, or `init=PATH`) as pid 1, with descriptors 0, 1
/// and 2 open on the console (2 writing to the host's stderr).
/// init's argv is `/etc/init.args` from the image if there is one (the
/// arguments, each ending in NUL: `vkernel run -- PROG ARGS` writes it),
/// else the path and the words after ` -- ` on the command line.
fn start_init(k: &mut Kernel, boot: &Boot) {
    let named = arg(boot.cmdline, "init").unwrap_or("/init");
    let read = |path: &[u8]| {
        // From the image itself first: a host root does not hold them.
        let name = &path[1..];
        for e in Archive::new(boot.image).flatten() {
            if vkernel_abi::cpio::normalize(e.name).as_bytes() == name {
                return Some(e.data.to_vec());
            }
        }
        let root = k.vfs.root();
        k.vfs
            .resolve(&root, path, fs::vfs::Follow::Yes)
            .and_then(|n| fs::read_all(&n))
            .ok()
    };
    let init_args = read(b"/etc/init.args");
    let init_env = read(b"/etc/init.env");
    let path = find_in_path(k, named);
    // Linux's rule for execve's strings, with init's default stack limit.
    let mut args = ArgBuf::new(param::STACK_BYTES);
    let mut ok = true;
    let strings = |list: &[u8]| -> Vec<Vec<u8>> {
        list.split(|&b| b == 0)
            .filter(|a| !a.is_empty())
            .map(<[u8]>::to_vec)
            .collect()
    };
    match init_args.as_deref().map(strings) {
        // The image's argv, when it is for this init.
        Some(list) if named == "/init" || list.first().is_some_and(|a0| a0 == named.as_bytes()) => {
            for a in &list {
                ok &= args.push(a, false).is_ok();
            }
        }
        _ => {
            ok &= args.push(named.as_bytes(), false).is_ok();
            if let Some((_, rest)) = boot.cmdline.split_once(" -- ") {
                for w in rest.split_ascii_whitespace() {
                    ok &= args.push(w.as_bytes(), false).is_ok();
                }
            }
        }
    }
    // The image's environment, then the defaults it does not set.
    let env = init_env.as_deref().map(strings).unwrap_or_default();
    let has_root = k
        .vfs
        .resolve(&k.vfs.root(), b"/root", fs::vfs::Follow::Yes)
        .is_ok();
    let home: &[u8] = if has_root { b"HOME=/root" } else { b"HOME=/" };
    let defaults: [&[u8]; 3] = [
        b"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        home,
        b"TERM=linux",
    ];
    for e in env
        .iter()
        .map(Vec::as_slice)
        .chain(defaults.into_iter().filter(|d| {
            let name = &d[..=d.iter().position(|&b| b == b'=').unwrap_or(0)];
            !env.iter().any(|e| e.starts_with(name))
        }))
    {
        ok &= args.push(e, true).is_ok();
    }
    if !ok || !args.fits_with_path(path.len()) {
        eprintln!(
            "kernel: init's arguments and environment are too long: Linux's execve \
             takes at most {} bytes of strings (each with its NUL, the program's path \
             included) and pointers, a quarter of the {} MiB stack limit, and at most \
             {} bytes in one string",
            args.limit(),
            param::STACK_BYTES >> 20,
            proc::exec::MAX_ARG_STRLEN
        );
        hypercall::exit(126);
    }
    let Some(slot) = k.procs.alloc(0) else {
        hypercall::exit(126);
    };
    {
        // A descriptor that is the host's terminal is /dev/console's node
        // too, so fstat matches the name /proc/self/fd gives and
        // ttyname(3) (`tty`) finds it, as a terminal's does on Linux.
        let console = k
            .vfs
            .resolve(&k.vfs.root(), b"/dev/console", fs::vfs::Follow::Yes);
        let files = &mut k.procs.procs[slot].files.borrow_mut();
        for (fd, stream) in [(0, 1), (1, 1), (2, 2)] {
            let kind = (boot.info.console_kinds >> (8 * fd)) as u8;
            let dev = Rc::new(Console { stream, kind });
            let node = if kind == vkernel_abi::console_kind::TTY {
                console.clone().ok()
            } else {
                None
            };
            let object = Object::Device { dev, node };
            let file = OpenFile::new(
                object,
                linux_raw_sys::general::O_RDWR,
                b"/dev/console".to_vec(),
            );
            // An empty table has room for three descriptors.
            let _ = files.set(
                fd,
                Fd {
                    file,
                    cloexec: false,
                },
            );
        }
    }
    if let Err(e) = k
        .procs
        .exec(&mut k.mm, &k.vfs, slot, &path, None, &mut args)
    {
        let path = core::str::from_utf8(&path).unwrap_or(named);
        eprintln!("kernel: cannot run {path}: {}", e.message());
        let status = if e.errno() == vkernel_abi::Errno::ENOENT {
            127
        } else {
            126
        };
        hypercall::exit(status);
    }
}

/// Where init named without a `/` is: the first match in the default
/// PATH's directories (the name itself if none).
fn find_in_path(k: &Kernel, name: &str) -> Vec<u8> {
    if name.contains('/') {
        return name.as_bytes().to_vec();
    }
    for dir in [
        "/usr/local/sbin",
        "/usr/local/bin",
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
    ] {
        let candidate = alloc::format!("{dir}/{name}");
        let found = k
            .vfs
            .resolve(&k.vfs.root(), candidate.as_bytes(), fs::vfs::Follow::Yes)
            .is_ok_and(|n| n.meta().kind == fs::vfs::Kind::Regular);
        if found {
            return candidate.into_bytes();
        }
    }
    name.as_bytes().to_vec()
}

/// Prints the image's members: the first sign the boot path works.
fn list_image(image: &[u8]) {
    println!("image: {} bytes", image.len());
    for entry in Archive::new(image) {
        match entry {
            Ok(e) => println!("  {:>8} {:06o} /{}", e.data.len(), e.mode, e.name),
            Err(e) => {
                println!("image: {e}");
                break;
            }
        }
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    println!("kernel panic: {info}");
    hypercall::exit(101)
}
