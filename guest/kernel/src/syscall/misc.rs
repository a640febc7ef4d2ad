//! Identity, limits and the rest of what a static libc asks at startup:
//! uname, getrandom, prlimit64, arch_prctl, futex.

use crate::kernel::Kernel;
use crate::mm::uaccess::{copy_in, copy_out, read_u64, write_u64, write_words};
use crate::param::NRLIMIT;
use crate::random;
use crate::syscall::log_refused;
use alloc::vec::Vec;
use guestlib::hypercall;
use vkernel_abi::layout::{PAGE_SIZE, VM_MAX_USER_ADDRESS};
use vkernel_abi::Errno;

pub fn sys_uname(k: &Kernel, s: usize, buf: u64) -> Result<i64, Errno> {
    let mut u = [0u8; 65 * 6];
    let fields: [&[u8]; 6] = [
        b"Linux",
        b"vkernel",
        b"6.1.0-vkernel",
        b"#1 vkernel guest kernel",
        b"x86_64",
        b"(none)",
    ];
    for (i, f) in fields.iter().enumerate() {
        u[i * 65..i * 65 + f.len()].copy_from_slice(f);
    }
    copy_out(&k.space(s), buf, &u)?;
    Ok(0)
}

pub fn sys_getrandom(k: &Kernel, s: usize, buf: u64, len: u64, flags: u64) -> Result<i64, Errno> {
    if flags & !7 != 0 {
        return Err(Errno::EINVAL);
    }
    let space = k.space(s);
    let len = len.min(32 << 20);
    let mut chunk = [0u8; 256];
    let mut done = 0u64;
    while done < len {
        let n = ((len - done) as usize).min(chunk.len());
        random::fill(&mut chunk[..n]);
        if let Err(e) = copy_out(&space, buf + done, &chunk[..n]) {
            if done == 0 {
                return Err(e);
            }
            break;
        }
        done += n as u64;
    }
    Ok(done as i64)
}

/// prlimit64 (and getrlimit/setrlimit): limits are stored per process and
/// inherited; RLIMIT_NPROC binds no one here (every process is root, which
/// Linux exempts; see `ProcTable::clone_task`).
pub fn sys_prlimit(
    k: &mut Kernel,
    s: usize,
    pid: u32,
    res: u64,
    new: u64,
    old: u64,
) -> Result<i64, Errno> {
    let t = &mut k.procs;
    let target = if pid == 0 || pid == t.procs[s].pid || pid == t.procs[s].tgid {
        s
    } else {
        match t.find(pid) {
            Some(x) if t.procs[x].alive() => x,
            _ => return Err(Errno::ESRCH),
        }
    };
    if res as usize >= NRLIMIT {
        return Err(Errno::EINVAL);
    }
    let caller = &t.procs[s].space();
    let mut want = None;
    if new != 0 {
        let soft = read_u64(caller, new)?;
        let hard = read_u64(caller, new + 8)?;
        if soft > hard {
            return Err(Errno::EINVAL);
        }
        if res == linux_raw_sys::general::RLIMIT_NOFILE as u64
            && hard > crate::fs::file::NR_OPEN as u64
        {
            return Err(Errno::EPERM);
        }
        want = Some([soft, hard]);
    }
    if old != 0 {
        let cur = t.procs[target].rlimits[res as usize];
        write_words(caller, old, &cur)?;
    }
    if let Some(w) = want {
        t.procs[target].rlimits[res as usize] = w;
    }
    Ok(0)
}

pub fn sys_arch_prctl(k: &mut Kernel, s: usize, code: u64, addr: u64) -> Result<i64, Errno> {
    // asm/prctl.h (linux-raw-sys has only ARCH_SET_FS of these).
    const ARCH_SET_GS: u32 = 0x1001;
    const ARCH_SET_FS: u32 = 0x1002;
    const ARCH_GET_FS: u32 = 0x1003;
    const ARCH_GET_GS: u32 = 0x1004;
    let p = &mut k.procs.procs[s];
    let code = u32::try_from(code).map_err(|_| Errno::EINVAL)?;
    match code {
        ARCH_SET_FS | ARCH_SET_GS => {
            if addr >= VM_MAX_USER_ADDRESS {
                return Err(Errno::EPERM);
            }
            p.vf.tls[(code == ARCH_SET_GS) as usize].base = addr;
            Ok(0)
        }
        ARCH_GET_FS | ARCH_GET_GS => {
            let base = p.vf.tls[(code == ARCH_GET_GS) as usize].base;
            write_u64(&p.space(), addr, base)?;
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}

/// set_robust_list: the head is kept and walked at the task's exit (see
/// `proc/thread.rs`); its length must be the size of `struct
/// robust_list_head`.
pub fn sys_set_robust_list(k: &mut Kernel, s: usize, head: u64, len: u64) -> Result<i64, Errno> {
    if len != 24 {
        return Err(Errno::EINVAL);
    }
    k.procs.procs[s].robust_list = head;
    Ok(0)
}

/// get_robust_list(tid, head_ptr, len_ptr): the head task `tid` (0: the
/// caller) set, and its size.
pub fn sys_get_robust_list(
    k: &mut Kernel,
    s: usize,
    tid: u64,
    head: u64,
    len: u64,
) -> Result<i64, Errno> {
    let t = task_of(k, s, tid)?;
    let h = k.procs.procs[t].robust_list;
    let space = k.space(s);
    write_u64(&space, head, h)?;
    write_u64(&space, len, 24)?;
    Ok(0)
}

/// The slot of task `tid` (0: the caller), or ESRCH.
fn task_of(k: &Kernel, s: usize, tid: u64) -> Result<usize, Errno> {
    if tid == 0 {
        return Ok(s);
    }
    let tid = u32::try_from(tid).map_err(|_| Errno::ESRCH)?;
    match k.procs.find(tid) {
        Some(t) if k.procs.procs[t].alive() => Ok(t),
        _ => Err(Errno::ESRCH),
    }
}

/// sched_getaffinity(tid, len, mask): one CPU. Linux copies
/// `nr_cpu_ids` rounded up to a long (8 bytes) and returns that size;
/// a buffer smaller than that, or not a multiple of a long, is EINVAL.
pub fn sys_sched_getaffinity(
    k: &mut Kernel,
    s: usize,
    tid: u64,
    len: u64,
    mask: u64,
) -> Result<i64, Errno> {
    task_of(k, s, tid)?;
    if len < 8 || !len.is_multiple_of(8) {
        return Err(Errno::EINVAL);
    }
    write_u64(&k.space(s), mask, 1)?;
    Ok(8)
}

/// sched_setaffinity(tid, len, mask): the set must hold CPU 0, the only
/// one (else EINVAL, as Linux for a set of no online CPU).
pub fn sys_sched_setaffinity(
    k: &mut Kernel,
    s: usize,
    tid: u64,
    len: u64,
    mask: u64,
) -> Result<i64, Errno> {
    task_of(k, s, tid)?;
    if len == 0 {
        return Err(Errno::EINVAL);
    }
    let mut b = [0u8; 1];
    crate::mm::uaccess::copy_in(&k.space(s), mask, &mut b)?;
    if b[0] & 1 == 0 {
        return Err(Errno::EINVAL);
    }
    Ok(0)
}

/// sched_getscheduler (`param` None: the policy, with
/// `SCHED_RESET_ON_FORK`) and sched_getparam (the static priority at
/// `param`), as sched_setscheduler left them (SCHED_OTHER, 0 at first).
pub fn sys_sched_getparam(
    k: &mut Kernel,
    s: usize,
    tid: i64,
    param: Option<u64>,
) -> Result<i64, Errno> {
    if tid < 0 || param == Some(0) {
        return Err(Errno::EINVAL);
    }
    let t = task_of(k, s, tid as u64)?;
    let (policy, prio) = k.procs.procs[t]
        .task
        .as_ref()
        .map_or((0, 0), |i| i.sched.get());
    match param {
        Some(p) => {
            copy_out(&k.space(s), p, &prio.to_le_bytes())?;
            Ok(0)
        }
        None => Ok(i64::from(policy)),
    }
}

/// sched_setscheduler (`policy` Some) and sched_setparam (the task's
/// policy kept), with Linux's checks: `EINVAL` for a negative pid, no
/// `param`, a policy it does not take here (SCHED_DEADLINE needs
/// sched_setattr) or a priority outside the policy's range (1 to 99 for
/// SCHED_FIFO and SCHED_RR, 0 for the others), `ESRCH` for no such task.
/// Every process is root, so every policy is allowed. The policy is kept,
/// inherited (SCHED_RESET_ON_FORK as Linux) and reported; the scheduler
/// gives every task the same slice whatever it is, which a real-time
/// policy logs.
pub fn sys_sched_setscheduler(
    k: &mut Kernel,
    s: usize,
    tid: i64,
    policy: Option<u64>,
    param: u64,
) -> Result<i64, Errno> {
    use crate::proc::task::SCHED_RESET_ON_FORK;
    if tid < 0 || param == 0 {
        return Err(Errno::EINVAL);
    }
    let flags = policy.map_or(0, |p| p as u32 & SCHED_RESET_ON_FORK);
    let base = policy.map(|p| p as u32 & !SCHED_RESET_ON_FORK);
    if base.is_some_and(|b| !matches!(b, 0 | 1 | 2 | 3 | 5)) {
        return Err(Errno::EINVAL);
    }
    let mut b = [0u8; 4];
    crate::mm::uaccess::copy_in(&k.space(s), param, &mut b)?;
    let prio = i32::from_le_bytes(b);
    let t = task_of(k, s, tid as u64)?;
    let task = k.procs.procs[t].task.clone().ok_or(Errno::ESRCH)?;
    let (old_policy, _) = task.sched.get();
    let base = base.unwrap_or(old_policy & !SCHED_RESET_ON_FORK);
    let keep_flags = if policy.is_some() {
        flags
    } else {
        old_policy & SCHED_RESET_ON_FORK
    };
    let (min, max) = sched_priority_range(u64::from(base))?;
    if i64::from(prio) < min || i64::from(prio) > max {
        return Err(Errno::EINVAL);
    }
    if base == 1 || base == 2 {
        log_refused(
            k,
            s,
            "sched_setscheduler",
            format_args!("a real-time policy (kept and reported; every task gets the same slice)"),
        );
    }
    task.sched.set((base | keep_flags, prio as u32));
    Ok(0)
}

/// sched_get_priority_min and _max: the static priorities a policy takes
/// (`(min, max)`), as Linux's: 1 to 99 for SCHED_FIFO and SCHED_RR, 0
/// for the others; `EINVAL` for a policy Linux does not know.
pub fn sched_priority_range(policy: u64) -> Result<(i64, i64), Errno> {
    match policy {
        // SCHED_FIFO, SCHED_RR.
        1 | 2 => Ok((1, 99)),
        // SCHED_OTHER, SCHED_BATCH, SCHED_IDLE, SCHED_DEADLINE.
        0 | 3 | 5 | 6 => Ok((0, 0)),
        _ => Err(Errno::EINVAL),
    }
}

/// sched_rr_get_interval(pid, tp): the time slice task `pid` (0: the
/// caller) runs for before another gets the CPU: the kernel's (the RUN
/// timeout, `slice_us=`).
pub fn sys_sched_rr_get_interval(
    k: &mut Kernel,
    s: usize,
    tid: i64,
    tp: u64,
) -> Result<i64, Errno> {
    if tid < 0 {
        return Err(Errno::EINVAL);
    }
    let t = task_of(k, s, tid as u64)?;
    // SCHED_FIFO has no time slice (Linux gives 0).
    let fifo = k.procs.procs[t]
        .task
        .as_ref()
        .is_some_and(|i| i.sched.get().0 & !crate::proc::task::SCHED_RESET_ON_FORK == 1);
    let ns = if fifo { 0 } else { k.slice_us * 1000 };
    write_words(&k.space(s), tp, &[ns / 1_000_000_000, ns % 1_000_000_000])?;
    Ok(0)
}

/// The tasks getpriority/setpriority's `which` and `who` name, as Linux
/// finds them: PRIO_PROCESS a task (0: the caller), PRIO_PGRP every task
/// of a process group (0: the caller's), PRIO_USER every task whose real
/// uid is `who` (0: the caller's). `EINVAL` for another `which`.
fn priority_targets(k: &Kernel, s: usize, which: u64, who: u64) -> Result<Vec<usize>, Errno> {
    let who = who as u32;
    let live = |t: &usize| k.procs.procs[*t].alive();
    Ok(match which {
        0 => task_of(k, s, u64::from(who)).map_or(Vec::new(), |t| alloc::vec![t]),
        1 => {
            let g = if who == 0 { k.procs.procs[s].pgid } else { who };
            (0..k.procs.procs.len())
                .filter(|t| live(t) && k.procs.procs[*t].pgid == g)
                .collect()
        }
        2 => {
            let u = if who == 0 {
                k.procs.procs[s].creds.ruid
            } else {
                who
            };
            (0..k.procs.procs.len())
                .filter(|t| live(t) && k.procs.procs[*t].creds.ruid == u)
                .collect()
        }
        _ => return Err(Errno::EINVAL),
    })
}

/// getpriority(which, who): the best (lowest) nice value among the
/// tasks named, as the system call gives it: `20 - nice` (1 to 40);
/// `ESRCH` if none.
pub fn sys_getpriority(k: &Kernel, s: usize, which: u64, who: u64) -> Result<i64, Errno> {
    priority_targets(k, s, which, who)?
        .into_iter()
        .filter_map(|t| k.procs.procs[t].task.as_ref().map(|i| i.nice.get()))
        .min()
        .map(|nice| i64::from(20 - nice))
        .ok_or(Errno::ESRCH)
}

/// setpriority(which, who, prio): the nice value of every task named,
/// clamped to -20..19 (root may lower it too); `ESRCH` if none. The value
/// is kept, inherited and reported (`/proc/PID/stat`); the scheduler
/// gives every task the same slice all the same, which is logged.
pub fn sys_setpriority(
    k: &Kernel,
    s: usize,
    which: u64,
    who: u64,
    prio: u64,
) -> Result<i64, Errno> {
    let targets = priority_targets(k, s, which, who)?;
    if targets.is_empty() {
        return Err(Errno::ESRCH);
    }
    let nice = (prio as i32).clamp(-20, 19);
    for t in targets {
        if let Some(i) = &k.procs.procs[t].task {
            i.nice.set(nice);
        }
    }
    if nice != 0 {
        log_refused(
            k,
            s,
            "setpriority",
            format_args!("scheduling by nice value {nice} (the value is kept; every task gets the same slice)"),
        );
    }
    Ok(0)
}

/// getcpu(cpu, node, cache): CPU 0 of node 0.
pub fn sys_getcpu(k: &mut Kernel, s: usize, cpu: u64, node: u64) -> Result<i64, Errno> {
    let space = k.space(s);
    for p in [cpu, node] {
        if p != 0 {
            copy_out(&space, p, &0u32.to_le_bytes())?;
        }
    }
    Ok(0)
}

/// The memory policy modes (`MPOL_*`) and mode flags.
const MPOL_DEFAULT: u32 = 0;
const MPOL_PREFERRED: u32 = 1;
const MPOL_BIND: u32 = 2;
const MPOL_INTERLEAVE: u32 = 3;
const MPOL_LOCAL: u32 = 4;
const MPOL_PREFERRED_MANY: u32 = 5;
const MPOL_WEIGHTED_INTERLEAVE: u32 = 6;
const MPOL_MAX: u32 = 7;
const MPOL_F_STATIC_NODES: u32 = 1 << 15;
const MPOL_F_RELATIVE_NODES: u32 = 1 << 14;
const MPOL_F_NUMA_BALANCING: u32 = 1 << 13;
const MPOL_MODE_FLAGS: u32 = MPOL_F_STATIC_NODES | MPOL_F_RELATIVE_NODES | MPOL_F_NUMA_BALANCING;

/// set_mempolicy(mode, nodemask, maxnode) on one NUMA node (node 0), with
/// Linux's checks (sanitize_mpol_flags, get_nodes, mpol_new): the mode
/// and its flags are kept per task, inherited, and reported by
/// get_mempolicy; with one node every policy places memory alike.
pub fn sys_set_mempolicy(k: &Kernel, s: usize, a: [u64; 3]) -> Result<i64, Errno> {
    let [mode, mask, maxnode] = a;
    let mode = mode as u32;
    let (flags, mut mode) = (mode & MPOL_MODE_FLAGS, mode & !MPOL_MODE_FLAGS);
    if mode >= MPOL_MAX
        || (flags & MPOL_F_STATIC_NODES != 0 && flags & MPOL_F_RELATIVE_NODES != 0)
        || (flags & MPOL_F_NUMA_BALANCING != 0 && mode != MPOL_BIND && mode != MPOL_PREFERRED_MANY)
    {
        return Err(Errno::EINVAL);
    }
    let nodes = user_nodes(k, s, mask, maxnode)?;
    let relative = flags & (MPOL_F_STATIC_NODES | MPOL_F_RELATIVE_NODES) != 0;
    match mode {
        MPOL_DEFAULT if nodes != 0 => return Err(Errno::EINVAL),
        MPOL_PREFERRED if nodes == 0 => {
            if relative {
                return Err(Errno::EINVAL);
            }
            mode = MPOL_LOCAL;
        }
        MPOL_LOCAL if nodes != 0 || relative => return Err(Errno::EINVAL),
        MPOL_DEFAULT | MPOL_PREFERRED | MPOL_LOCAL => {}
        _ if nodes == 0 => return Err(Errno::EINVAL),
        _ => {}
    }
    // The nodes that exist (node 0): a mask naming none is EINVAL, except
    // a relative one (its nodes fold onto the ones there are).
    let kept = match mode {
        MPOL_DEFAULT | MPOL_LOCAL => 0,
        _ if flags & MPOL_F_RELATIVE_NODES != 0 => 1,
        _ if nodes & 1 == 0 => return Err(Errno::EINVAL),
        _ => 1,
    };
    let task = k.procs.procs[s].task.as_ref().ok_or(Errno::ESRCH)?;
    let stored = if mode == MPOL_DEFAULT {
        0
    } else {
        mode | flags
    };
    // A static or relative mask is reported as the caller gave it.
    let reported = if relative && kept != 0 { nodes } else { kept };
    task.mempolicy.set((stored, reported));
    Ok(0)
}

/// A node mask from the user (Linux's get_nodes): `maxnode - 1` bits;
/// past a page of them `EINVAL`; bits past the kernel's node count
/// (`MAX_NUMNODES`, 1024 on Debian's kernels) must be clear.
fn user_nodes(k: &Kernel, s: usize, mask: u64, maxnode: u64) -> Result<u64, Errno> {
    const MAX_NUMNODES: u64 = 1024;
    let bits = maxnode.saturating_sub(1);
    if mask == 0 || bits == 0 {
        return Ok(0);
    }
    if bits > PAGE_SIZE * 8 {
        return Err(Errno::EINVAL);
    }
    let space = k.space(s);
    let longs = bits.div_ceil(64);
    let mut nodes = 0u64;
    for i in 0..longs {
        let mut word = read_u64(&space, mask.wrapping_add(i * 8))?;
        // Only the first `bits` bits count.
        let valid = (bits - i * 64).min(64);
        if valid < 64 {
            word &= (1u64 << valid) - 1;
        }
        if i == 0 {
            nodes = word;
        } else if word != 0 && i * 64 >= MAX_NUMNODES {
            return Err(Errno::EINVAL);
        }
    }
    Ok(nodes)
}

/// get_mempolicy(mode, nodemask, maxnode, addr, flags) on one NUMA node,
/// as Linux answers: the task's policy (set_mempolicy) with its mode
/// flags and nodes (none for the default and local ones); with
/// `MPOL_F_MEMS_ALLOWED` node 0; `MPOL_F_ADDR` asks of a mapped address
/// (`EFAULT` for an unmapped one; mbind is not implemented, so a
/// mapping's policy is the default), with `MPOL_F_NODE` the node holding
/// it (0); `MPOL_F_NODE` alone is the next node of an interleave policy,
/// else `EINVAL`. The mask is written as Linux's copy_nodes_to_user:
/// `maxnode - 1` bits rounded up to longs, past the one node's long
/// zeroed, at most a page (`EINVAL`).
pub fn sys_get_mempolicy(k: &Kernel, s: usize, a: [u64; 5]) -> Result<i64, Errno> {
    const F_NODE: u64 = 1;
    const F_ADDR: u64 = 2;
    const F_MEMS_ALLOWED: u64 = 4;
    let [mode, mask, maxnode, addr, flags] = a;
    if mask != 0 && maxnode < 1 {
        return Err(Errno::EINVAL);
    }
    if flags & !(F_NODE | F_ADDR | F_MEMS_ALLOWED) != 0 {
        return Err(Errno::EINVAL);
    }
    let space = k.space(s);
    let (policy, policy_nodes) = k.procs.procs[s]
        .task
        .as_ref()
        .map_or((0, 0), |t| t.mempolicy.get());
    let (value, nodes) = if flags & F_MEMS_ALLOWED != 0 {
        if flags & (F_NODE | F_ADDR) != 0 {
            return Err(Errno::EINVAL);
        }
        (0u32, 1u64)
    } else if flags & F_ADDR != 0 {
        if !space.borrow().covers(addr, 1) {
            return Err(Errno::EFAULT);
        }
        // MPOL_F_NODE: the node of the page there, else the mapping's
        // policy; both 0.
        (0, 0)
    } else if flags & F_NODE != 0 {
        let interleave = matches!(
            policy & !MPOL_MODE_FLAGS,
            MPOL_INTERLEAVE | MPOL_WEIGHTED_INTERLEAVE
        );
        if !interleave {
            return Err(Errno::EINVAL);
        }
        (0, policy_nodes)
    } else {
        (policy, policy_nodes)
    };
    if mode != 0 {
        copy_out(&space, mode, &value.to_le_bytes())?;
    }
    if mask != 0 {
        let copy = (maxnode - 1).div_ceil(64) * 8;
        if copy > PAGE_SIZE {
            return Err(Errno::EINVAL);
        }
        // The longs past the first are zeroed first, as Linux.
        let zeros = [0u8; 256];
        let mut at = 8;
        while at < copy {
            let n = (copy - at).min(zeros.len() as u64);
            copy_out(&space, mask.wrapping_add(at), &zeros[..n as usize])?;
            at += n;
        }
        if copy > 0 {
            copy_out(&space, mask, &nodes.to_le_bytes())?;
        }
    }
    Ok(0)
}

/// membarrier(cmd, flags, cpu_id): on one CPU every barrier is already
/// there (a task runs only after the kernel switched to it), so the
/// commands are done when called. The query answers the set below.
pub fn sys_membarrier(cmd: u64, flags: u64) -> Result<i64, Errno> {
    const QUERY: u64 = 0;
    // GLOBAL, GLOBAL_EXPEDITED, REGISTER_GLOBAL_EXPEDITED,
    // PRIVATE_EXPEDITED, REGISTER_PRIVATE_EXPEDITED.
    const SUPPORTED: u64 = 1 | 2 | 4 | 8 | 16;
    if flags != 0 {
        return Err(Errno::EINVAL);
    }
    match cmd {
        QUERY => Ok(SUPPORTED as i64),
        c if c.is_power_of_two() && c & SUPPORTED != 0 => Ok(0),
        _ => Err(Errno::EINVAL),
    }
}

/// sysinfo: uptime, memory (the figures of `/proc/meminfo`, in bytes)
/// and the number of processes. Load averages are not kept: 0.
pub fn sys_sysinfo(k: &Kernel, s: usize, buf: u64) -> Result<i64, Errno> {
    let shmem = k
        .vfs
        .mount_table()
        .upgrade()
        .and_then(|t| {
            t.try_borrow()
                .ok()
                .map(|t| crate::proc::procfs::shmem_bytes(&t))
        })
        .unwrap_or(0);
    let m = k.mm.stats(shmem);
    let (procs, _) = k.procs.tasks.counts();
    // struct sysinfo: uptime, loads[3], totalram, freeram, sharedram,
    // bufferram, totalswap, freeswap (longs), procs (u16), padding,
    // totalhigh, freehigh, mem_unit (u32), padding: 112 bytes.
    let mut b = [0u8; 112];
    let put = |b: &mut [u8], at: usize, v: u64| b[at..at + 8].copy_from_slice(&v.to_le_bytes());
    put(&mut b, 0, hypercall::clock_ns() / 1_000_000_000);
    put(&mut b, 32, m.total);
    put(&mut b, 40, m.free);
    put(&mut b, 48, m.shmem);
    b[80..82].copy_from_slice(&(procs.min(u16::MAX as usize) as u16).to_le_bytes());
    b[104..108].copy_from_slice(&1u32.to_le_bytes());
    copy_out(&k.space(s), buf, &b)?;
    Ok(0)
}

/// prctl(option, arg2, ...): the options ordinary programs use — the
/// thread name, the parent-death signal, the dumpable and no-new-privs
/// flags, the capability bounding set (every capability: the guest runs
/// as root) and the seccomp mode (none). Others are refused with a log
/// line (EINVAL, as a kernel without them).
pub fn sys_prctl(k: &mut Kernel, s: usize, a: [u64; 6]) -> Result<i64, Errno> {
    use linux_raw_sys::prctl::*;
    let [option, arg2, arg3, arg4, arg5, _] = a;
    let Ok(option) = u32::try_from(option) else {
        return Err(Errno::EINVAL);
    };
    if let Some(r) = super::creds::prctl_caps(k, s, [option.into(), arg2, arg3, arg4, arg5]) {
        return r;
    }
    let space = k.space(s);
    let p = &mut k.procs.procs[s];
    match option {
        PR_SET_NAME => {
            let mut name = [0u8; 16];
            let n = crate::mm::uaccess::copy_in_partial(&space, arg2, &mut name[..15]);
            if n == 0 {
                return Err(Errno::EFAULT);
            }
            let len = name[..n].iter().position(|&b| b == 0).unwrap_or(n);
            p.name = [0; 16];
            p.name[..len].copy_from_slice(&name[..len]);
            p.name_len = len;
            if let Some(t) = &p.task {
                let mut c = t.comm.borrow_mut();
                c.clear();
                c.extend_from_slice(&name[..len]);
            }
            Ok(0)
        }
        PR_GET_NAME => {
            let mut name = [0u8; 16];
            name[..p.name_len].copy_from_slice(&p.name[..p.name_len]);
            copy_out(&space, arg2, &name)?;
            Ok(0)
        }
        PR_SET_PDEATHSIG => {
            let sig = i32::try_from(arg2).map_err(|_| Errno::EINVAL)?;
            if sig != 0 && !crate::proc::signal::valid(sig) {
                return Err(Errno::EINVAL);
            }
            p.pdeath_signal = sig;
            Ok(0)
        }
        PR_GET_PDEATHSIG => {
            copy_out(&space, arg2, &p.pdeath_signal.to_le_bytes())?;
            Ok(0)
        }
        PR_GET_DUMPABLE => Ok(p.dumpable as i64),
        PR_SET_DUMPABLE if arg2 <= 1 => {
            p.dumpable = arg2 == 1;
            Ok(0)
        }
        PR_SET_NO_NEW_PRIVS if arg2 == 1 && arg3 == 0 && arg4 == 0 && arg5 == 0 => {
            p.no_new_privs = true;
            Ok(0)
        }
        PR_GET_NO_NEW_PRIVS if arg2 == 0 && arg3 == 0 && arg4 == 0 && arg5 == 0 => {
            Ok(p.no_new_privs as i64)
        }
        PR_GET_SECCOMP => Ok(0),
        PR_SET_DUMPABLE | PR_SET_NO_NEW_PRIVS | PR_GET_NO_NEW_PRIVS => Err(Errno::EINVAL),
        _ => {
            log_refused(k, s, "prctl", format_args!("option {option}"));
            Err(Errno::EINVAL)
        }
    }
}

/// Most supplementary groups (Linux's NGROUPS_MAX).
const NGROUPS_MAX: usize = 65536;

/// getgroups(size, list): the supplementary groups; with size 0 only
/// their number; `EINVAL` if `size` is too small.
pub fn sys_getgroups(k: &Kernel, s: usize, size: u64, list: u64) -> Result<i64, Errno> {
    let groups = &k.procs.procs[s].groups;
    let size = usize::try_from(size as i32).map_err(|_| Errno::EINVAL)?;
    if size == 0 {
        return Ok(groups.len() as i64);
    }
    if size < groups.len() {
        return Err(Errno::EINVAL);
    }
    let bytes: Vec<u8> = groups.iter().flat_map(|g| g.to_le_bytes()).collect();
    copy_out(&k.space(s), list, &bytes)?;
    Ok(groups.len() as i64)
}

/// setgroups(size, list): sets the caller's supplementary groups
/// (`EPERM` without CAP_SETGID). Kept sorted, as Linux keeps them.
pub fn sys_setgroups(k: &mut Kernel, s: usize, size: u64, list: u64) -> Result<i64, Errno> {
    super::creds::may_set_groups(k, s)?;
    let size = usize::try_from(size as i32).map_err(|_| Errno::EINVAL)?;
    if size > NGROUPS_MAX {
        return Err(Errno::EINVAL);
    }
    let mut bytes = Vec::new();
    bytes
        .try_reserve_exact(size * 4)
        .map_err(|_| Errno::ENOMEM)?;
    bytes.resize(size * 4, 0);
    copy_in(&k.space(s), list, &mut bytes)?;
    let mut groups: Vec<u32> = bytes
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    groups.sort_unstable();
    k.procs.procs[s].groups = groups;
    Ok(0)
}
