//! Signals, as far as the kernel has them: the signal a trap becomes, and
//! default actions (every signal a process does not ignore ends it; there
//! are no handlers yet). Numbers are Linux's (linux-raw-sys).

use linux_raw_sys::general as linux;
use vkernel_abi::frame::*;

pub const SIGILL: i32 = linux::SIGILL as i32;
pub const SIGTRAP: i32 = linux::SIGTRAP as i32;
pub const SIGBUS: i32 = linux::SIGBUS as i32;
pub const SIGFPE: i32 = linux::SIGFPE as i32;
pub const SIGKILL: i32 = linux::SIGKILL as i32;
pub const SIGSEGV: i32 = linux::SIGSEGV as i32;
pub const SIGPIPE: i32 = linux::SIGPIPE as i32;

/// The signal (and its name) a process trap raises, as Linux maps
/// exceptions to signals.
pub fn for_trap(trap: u64) -> (i32, &'static str) {
    match trap {
        T_PAGEFLT | T_PROTFLT | T_SEGNPFLT | T_STKFLT => (SIGSEGV, "SIGSEGV"),
        T_PRIVINFLT => (SIGILL, "SIGILL"),
        T_DIVIDE | T_ARITHTRAP | T_XMMFLT | T_OFLOW => (SIGFPE, "SIGFPE"),
        T_BPTFLT | T_TRCTRAP => (SIGTRAP, "SIGTRAP"),
        T_ALIGNFLT | T_BOUND => (SIGBUS, "SIGBUS"),
        _ => (SIGSEGV, "SIGSEGV"),
    }
}

/// Whether `sig`'s default action is to ignore it (SIGCHLD, SIGCONT,
/// SIGURG, SIGWINCH).
pub fn ignored_by_default(sig: i32) -> bool {
    [
        linux::SIGCHLD,
        linux::SIGCONT,
        linux::SIGURG,
        linux::SIGWINCH,
    ]
    .contains(&(sig as u32))
}

/// Whether `sig` stops a process by default (SIGSTOP, SIGTSTP, SIGTTIN,
/// SIGTTOU): not supported yet.
pub fn stops_by_default(sig: i32) -> bool {
    [
        linux::SIGSTOP,
        linux::SIGTSTP,
        linux::SIGTTIN,
        linux::SIGTTOU,
    ]
    .contains(&(sig as u32))
}
