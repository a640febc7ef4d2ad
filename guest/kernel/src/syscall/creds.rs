//! The user and group id calls and the capability calls, over each task's
//! [`Creds`] (Linux's rules: see `proc::creds`).

use crate::kernel::Kernel;
use crate::mm::uaccess::{copy_in, copy_out};
use crate::proc::creds::{Creds, CAP_LAST_CAP, CAP_SETPCAP};
use crate::syscall::log_refused;
use vkernel_abi::Errno;

/// Which id call: the uid or the gid one.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Ids {
    User,
    Group,
}

/// Changes task `s`'s credentials with `f`; logs, once per task, that a
/// task that lost root's file capabilities keeps root's file access
/// (file permissions are not checked here).
fn change(
    k: &mut Kernel,
    s: usize,
    f: impl FnOnce(&mut Creds) -> Result<i64, Errno>,
) -> Result<i64, Errno> {
    let p = &mut k.procs.procs[s];
    let mut c = p.creds;
    let r = f(&mut c)?;
    let dropped = !p.creds.dropped_root() && c.dropped_root();
    p.set_creds(c);
    if dropped {
        log_refused(
            k,
            s,
            "set*id",
            format_args!(
                "permission checks for uid {} gid {} (files, signals, limits: it keeps root's)",
                c.fsuid, c.fsgid
            ),
        );
    }
    Ok(r)
}

/// Arguments of the id calls are `uid_t`s: the low 32 bits.
fn id(v: u64) -> u32 {
    v as u32
}

/// setuid(id) / setgid(id).
pub fn sys_setid(k: &mut Kernel, s: usize, which: Ids, v: u64) -> Result<i64, Errno> {
    change(k, s, |c| {
        match which {
            Ids::User => c.set_uid(id(v))?,
            Ids::Group => c.set_gid(id(v))?,
        }
        Ok(0)
    })
}

/// setreuid(r, e) / setregid(r, e).
pub fn sys_setreid(k: &mut Kernel, s: usize, which: Ids, r: u64, e: u64) -> Result<i64, Errno> {
    change(k, s, |c| {
        match which {
            Ids::User => c.set_reuid(id(r), id(e))?,
            Ids::Group => c.set_regid(id(r), id(e))?,
        }
        Ok(0)
    })
}

/// setresuid(r, e, s) / setresgid(r, e, s).
pub fn sys_setresid(k: &mut Kernel, s: usize, which: Ids, a: [u64; 3]) -> Result<i64, Errno> {
    change(k, s, |c| {
        match which {
            Ids::User => c.set_resuid(id(a[0]), id(a[1]), id(a[2]))?,
            Ids::Group => c.set_resgid(id(a[0]), id(a[1]), id(a[2]))?,
        }
        Ok(0)
    })
}

/// setfsuid(id) / setfsgid(id): the old one, whether it changed or not.
pub fn sys_setfsid(k: &mut Kernel, s: usize, which: Ids, v: u64) -> Result<i64, Errno> {
    change(k, s, |c| {
        Ok(i64::from(match which {
            Ids::User => c.set_fsuid(id(v)),
            Ids::Group => c.set_fsgid(id(v)),
        }))
    })
}

/// getresuid(r*, e*, s*) / getresgid(r*, e*, s*).
pub fn sys_getresid(k: &mut Kernel, s: usize, which: Ids, ptrs: [u64; 3]) -> Result<i64, Errno> {
    let c = k.procs.procs[s].creds;
    let ids = match which {
        Ids::User => [c.ruid, c.euid, c.suid],
        Ids::Group => [c.rgid, c.egid, c.sgid],
    };
    let space = k.space(s);
    for (p, v) in ptrs.into_iter().zip(ids) {
        copy_out(&space, p, &v.to_le_bytes())?;
    }
    Ok(0)
}

/// The securebit of PR_SET_KEEPCAPS.
const SECBIT_KEEP_CAPS: u32 = 4;

const CAPABILITY_VERSION_1: u32 = 0x1998_0330;
const CAPABILITY_VERSION_2: u32 = 0x2007_1026;
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// The data words a header's version has (`EINVAL`, with the version
/// this kernel prefers written back, for another: Linux's
/// `cap_validate_magic`).
fn cap_words(k: &Kernel, s: usize, header: u64) -> Result<(usize, i32), Errno> {
    let mut h = [0u8; 8];
    copy_in(&k.space(s), header, &mut h)?;
    let version = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
    let pid = i32::from_le_bytes([h[4], h[5], h[6], h[7]]);
    match version {
        CAPABILITY_VERSION_1 => Ok((1, pid)),
        CAPABILITY_VERSION_2 | CAPABILITY_VERSION_3 => Ok((2, pid)),
        _ => {
            copy_out(&k.space(s), header, &CAPABILITY_VERSION_3.to_le_bytes())?;
            Err(Errno::EINVAL)
        }
    }
}

/// capget(header, data): a task's effective, permitted and inheritable
/// sets, as 32-bit words (one per set for version 1, two for 2 and 3).
pub fn sys_capget(k: &mut Kernel, s: usize, header: u64, data: u64) -> Result<i64, Errno> {
    let checked = cap_words(k, s, header);
    if data == 0 {
        // A probe of the version: 0 either way (the header says which).
        return match checked {
            Ok(_) | Err(Errno::EINVAL) => Ok(0),
            Err(e) => Err(e),
        };
    }
    let (words, pid) = checked?;
    if pid < 0 {
        return Err(Errno::EINVAL);
    }
    let t = if pid == 0 {
        s
    } else {
        match k.procs.find(pid as u32) {
            Some(t) if k.procs.procs[t].alive() => t,
            _ => return Err(Errno::ESRCH),
        }
    };
    let c = k.procs.procs[t].creds;
    let mut out = [0u8; 24];
    for w in 0..words {
        for (i, set) in [c.cap_effective, c.cap_permitted, c.cap_inheritable]
            .into_iter()
            .enumerate()
        {
            let v = (set >> (32 * w)) as u32;
            out[w * 12 + i * 4..][..4].copy_from_slice(&v.to_le_bytes());
        }
    }
    copy_out(&k.space(s), data, &out[..words * 12])?;
    Ok(0)
}

/// capset(header, data): the caller's own sets (`EPERM` for another
/// task's, or for sets it may not have).
pub fn sys_capset(k: &mut Kernel, s: usize, header: u64, data: u64) -> Result<i64, Errno> {
    let (words, pid) = cap_words(k, s, header)?;
    if pid != 0 && pid as u32 != k.procs.procs[s].pid {
        return Err(Errno::EPERM);
    }
    let mut d = [0u8; 24];
    copy_in(&k.space(s), data, &mut d[..words * 12])?;
    let mut sets = [0u64; 3];
    for w in 0..words {
        for (i, set) in sets.iter_mut().enumerate() {
            let at = w * 12 + i * 4;
            let v = u32::from_le_bytes([d[at], d[at + 1], d[at + 2], d[at + 3]]);
            *set |= u64::from(v) << (32 * w);
        }
    }
    // Bits past the last capability are not capabilities.
    let full = (1u64 << (CAP_LAST_CAP + 1)) - 1;
    let [effective, permitted, inheritable] = sets.map(|v| v & full);
    change(k, s, |c| {
        c.set_caps(effective, permitted, inheritable)?;
        Ok(0)
    })
}

/// prctl's capability options: PR_CAPBSET_READ/DROP, PR_SET/GET_KEEPCAPS
/// and PR_CAP_AMBIENT; `None` for another option.
pub fn prctl_caps(k: &mut Kernel, s: usize, a: [u64; 5]) -> Option<Result<i64, Errno>> {
    use linux_raw_sys::prctl::*;
    let [option, arg2, arg3, arg4, arg5] = a;
    let cap = |v: u64| u32::try_from(v).ok().filter(|&c| c <= CAP_LAST_CAP);
    let c = k.procs.procs[s].creds;
    let option = u32::try_from(option).ok()?;
    Some(match option {
        PR_CAPBSET_READ => match cap(arg2) {
            Some(n) => Ok(i64::from(c.cap_bounding & (1 << n) != 0)),
            None => Err(Errno::EINVAL),
        },
        PR_CAPBSET_DROP => match cap(arg2) {
            None => Err(Errno::EINVAL),
            Some(_) if !c.capable(CAP_SETPCAP) => Err(Errno::EPERM),
            Some(n) => change(k, s, |c| {
                c.cap_bounding &= !(1 << n);
                Ok(0)
            }),
        },
        PR_GET_KEEPCAPS if arg2 == 0 && arg3 == 0 && arg4 == 0 && arg5 == 0 => {
            Ok(i64::from(c.keep_caps))
        }
        PR_SET_KEEPCAPS if arg2 <= 1 && arg3 == 0 && arg4 == 0 && arg5 == 0 => change(k, s, |c| {
            c.keep_caps = arg2 == 1;
            Ok(0)
        }),
        PR_GET_KEEPCAPS | PR_SET_KEEPCAPS => Err(Errno::EINVAL),
        // The securebits: only SECBIT_KEEP_CAPS (PR_SET_KEEPCAPS's) is
        // kept here.
        PR_GET_SECUREBITS => Ok(i64::from(c.keep_caps) << SECBIT_KEEP_CAPS),
        PR_SET_SECUREBITS if !c.capable(CAP_SETPCAP) => Err(Errno::EPERM),
        PR_SET_SECUREBITS if arg2 & !(1 << SECBIT_KEEP_CAPS) != 0 => {
            log_refused(k, s, "prctl", format_args!("securebits {arg2:#x}"));
            Err(Errno::EINVAL)
        }
        PR_SET_SECUREBITS => change(k, s, |c| {
            c.keep_caps = arg2 != 0;
            Ok(0)
        }),
        PR_CAP_AMBIENT => {
            let op = u32::try_from(arg2).unwrap_or(u32::MAX);
            if op == PR_CAP_AMBIENT_CLEAR_ALL {
                if arg3 != 0 || arg4 != 0 || arg5 != 0 {
                    return Some(Err(Errno::EINVAL));
                }
                return Some(change(k, s, |c| {
                    c.cap_ambient = 0;
                    Ok(0)
                }));
            }
            let Some(n) = cap(arg3).filter(|_| arg4 == 0 && arg5 == 0) else {
                return Some(Err(Errno::EINVAL));
            };
            let bit = 1u64 << n;
            match op {
                PR_CAP_AMBIENT_IS_SET => Ok(i64::from(c.cap_ambient & bit != 0)),
                PR_CAP_AMBIENT_RAISE
                    if c.cap_permitted & bit == 0 || c.cap_inheritable & bit == 0 =>
                {
                    Err(Errno::EPERM)
                }
                PR_CAP_AMBIENT_RAISE => change(k, s, |c| {
                    c.cap_ambient |= bit;
                    Ok(0)
                }),
                PR_CAP_AMBIENT_LOWER => change(k, s, |c| {
                    c.cap_ambient &= !bit;
                    Ok(0)
                }),
                _ => Err(Errno::EINVAL),
            }
        }
        _ => return None,
    })
}

/// setgroups needs CAP_SETGID.
pub fn may_set_groups(k: &Kernel, s: usize) -> Result<(), Errno> {
    if k.procs.procs[s]
        .creds
        .capable(crate::proc::creds::CAP_SETGID)
    {
        Ok(())
    } else {
        Err(Errno::EPERM)
    }
}
