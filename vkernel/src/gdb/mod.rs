//! A gdb remote stub (`vkernel run --gdb ADDR`), built on the `gdbstub`
//! crate's state machine so the run loop stays ours.
//!
//! On these machines guest ring 0 is emulated and everything the debugger
//! cares about runs in ring 3, where KVM_SET_GUEST_DEBUG does nothing
//! (KVM-NOTES). So breakpoints are `int3` bytes written into guest memory
//! (#BP) and single step is RFLAGS.TF (#DB), both arriving through the
//! host's IDT stubs like any exception. The same works on hardware KVM.
//!
//! Which context the debugger sees is whatever is on the vCPU: the guest
//! kernel, or the process `vmspace_ctl(RUN)` entered. Memory goes through
//! that context's page tables.
//!
//! Breakpoints come in two kinds, by address:
//! - inside the guest kernel's text (its ELF's executable segments): written
//!   into the kernel's memory at once, through the kernel's page tables;
//! - anywhere else: a *process* breakpoint, written into each process while
//!   it is on the vCPU (armed when RUN enters it, lifted when it traps back
//!   to the kernel), so the guest kernel never sees the `int3` and pages it
//!   reads with pread stay clean.
//!
//! The debugger's traps are told from the guest's own: an `int3` at an
//! address where no debugger breakpoint is planted, or a #DB when the
//! debugger did not ask for a step (or the guest had TF set itself), takes
//! the guest's usual path (T_BPTFLT / T_TRCTRAP to the guest kernel, or a
//! kernel crash report).

mod memory;
mod target;
mod watcher;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::ops::Range;
use std::os::fd::AsRawFd;

use gdbstub::common::Signal;
use gdbstub::conn::Connection;
use gdbstub::stub::state_machine::GdbStubStateMachine;
use gdbstub::stub::{DisconnectReason, GdbStub, SingleThreadStopReason};
use kvm_bindings::{kvm_regs, kvm_segment, kvm_sregs};
use vkernel_abi::frame::T_FAST_SYSCALL;
use vkernel_abi::{rflags, TrapFrame};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::hypercall::Flow;
use crate::machine::Machine;
use watcher::{Watch, Watcher};

pub use memory::{read_virt, translate, write_virt};

const INT3: u8 = 0xcc;

type StopReason = SingleThreadStopReason<u64>;
type StateMachine = GdbStubStateMachine<'static, Machine, Conn>;

/// The client connection: a TCP stream with an output buffer, flushed per
/// packet (gdbstub writes a byte at a time).
pub struct Conn {
    stream: TcpStream,
    out: Vec<u8>,
}

impl Connection for Conn {
    type Error = std::io::Error;

    fn write(&mut self, byte: u8) -> Result<(), Self::Error> {
        self.out.push(byte);
        Ok(())
    }

    fn write_all(&mut self, buf: &[u8]) -> Result<(), Self::Error> {
        self.out.extend_from_slice(buf);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        let r = Write::write_all(&mut self.stream, &self.out);
        self.out.clear();
        r?;
        Write::flush(&mut self.stream)
    }

    fn on_session_start(&mut self) -> Result<(), Self::Error> {
        self.stream.set_nodelay(true)
    }
}

/// Packet framing in front of gdbstub, which ends the session on any byte
/// it cannot parse: bytes outside a packet other than `+`, `-` and Ctrl-C
/// are dropped, and a packet whose checksum is wrong is refused with `-`
/// (the client sends it again), as the protocol asks.
#[derive(Default)]
struct Framer {
    /// The packet being received, from its `$`; empty between packets.
    packet: Vec<u8>,
}

/// What one byte from the client amounts to.
enum Framed {
    /// Nothing yet.
    More,
    /// Bytes for gdbstub: an ack, a Ctrl-C, or a whole good packet.
    Pass(Vec<u8>),
    /// A packet with a bad checksum: answer `-`.
    Nak,
}

impl Framer {
    fn push(&mut self, b: u8) -> Framed {
        if self.packet.is_empty() {
            return match b {
                b'$' => {
                    self.packet.push(b);
                    Framed::More
                }
                b'+' | b'-' | 0x03 => Framed::Pass(vec![b]),
                _ => {
                    log::debug!("gdb: dropped stray byte {b:#04x}");
                    Framed::More
                }
            };
        }
        self.packet.push(b);
        if self.packet.len() > 64 * 1024 {
            log::warn!("gdb: dropped an over-long packet");
            self.packet.clear();
            return Framed::Nak;
        }
        let n = self.packet.len();
        if n < 4 || self.packet[n - 3] != b'#' {
            return Framed::More;
        }
        let p = std::mem::take(&mut self.packet);
        let sum = p[1..n - 3].iter().fold(0u8, |a, &c| a.wrapping_add(c));
        let given = std::str::from_utf8(&p[n - 2..])
            .ok()
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        if given == Some(sum) {
            Framed::Pass(p)
        } else {
            log::warn!("gdb: refused a packet with a bad checksum");
            Framed::Nak
        }
    }
}

/// Feeds framed bytes to the state machine.
fn pump(m: &mut Machine, mut sm: StateMachine, bytes: &[u8]) -> Result<StateMachine, String> {
    for &b in bytes {
        sm = match sm {
            GdbStubStateMachine::Idle(s) => s.incoming_data(m, b),
            GdbStubStateMachine::Running(s) => s.incoming_data(m, b),
            other => return Ok(other),
        }
        .map_err(|e| e.to_string())?;
    }
    Ok(sm)
}

/// Takes one byte from the client through the framer into the session.
fn take_byte(m: &mut Machine, mut sm: StateMachine, b: u8) -> Result<StateMachine, String> {
    match gdb(m).framer.push(b) {
        Framed::More => Ok(sm),
        Framed::Pass(bytes) => pump(m, sm, &bytes),
        Framed::Nak => {
            if let Some(c) = conn(&mut sm) {
                c.out.push(b'-');
                let _ = c.flush();
            }
            Ok(sm)
        }
    }
}

fn conn(sm: &mut StateMachine) -> Option<&mut Conn> {
    Some(match sm {
        GdbStubStateMachine::Idle(s) => s.borrow_conn(),
        GdbStubStateMachine::Running(s) => s.borrow_conn(),
        GdbStubStateMachine::CtrlCInterrupt(s) => s.borrow_conn(),
        GdbStubStateMachine::Disconnected(s) => s.borrow_conn(),
    })
}

/// Resuming as the client asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Resume {
    Continue,
    Step,
}

/// The instruction a single step runs, where it matters for TF.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StepInsn {
    /// `pushf`: the pushed copy of RFLAGS must not show the debugger's TF.
    Pushf,
    /// `popf` / `iretq`: RFLAGS afterwards is what the guest chose.
    Popf,
    Other,
}

/// A single step in progress.
#[derive(Clone, Copy, Debug)]
struct Step {
    /// The guest had TF set itself: the #DB is (also) the guest's.
    guest_tf: bool,
    insn: StepInsn,
}

/// An `int3` written into guest memory over `orig`.
#[derive(Clone, Copy, Debug)]
struct Planted {
    gpa: u64,
    orig: u8,
}

fn plant(mem: &GuestMemoryMmap, cr3: u64, va: u64) -> Option<Planted> {
    let t = translate(mem, cr3, va)?;
    let orig: u8 = mem.read_obj(GuestAddress(t.gpa)).ok()?;
    mem.write_obj(INT3, GuestAddress(t.gpa)).ok()?;
    Some(Planted { gpa: t.gpa, orig })
}

fn lift(mem: &GuestMemoryMmap, p: &Planted) {
    if mem.read_obj::<u8>(GuestAddress(p.gpa)).ok() == Some(INT3) {
        let _ = mem.write_obj(p.orig, GuestAddress(p.gpa));
    }
}

/// The debugger's breakpoints.
#[derive(Default)]
struct Breakpoints {
    /// In the kernel's text, planted while set.
    kernel: BTreeMap<u64, Planted>,
    /// Wanted in every process.
    process: BTreeSet<u64>,
    /// Planted in the process on the vCPU now.
    armed: BTreeMap<u64, Planted>,
}

impl Breakpoints {
    fn planted(&self) -> impl Iterator<Item = (&u64, &Planted)> {
        self.kernel.iter().chain(self.armed.iter())
    }
}

/// The debugger: listener, client session, breakpoints, step state.
pub struct Gdb {
    listener: TcpListener,
    addr: String,
    sm: Option<StateMachine>,
    framer: Framer,
    watcher: Watcher,
    bps: Breakpoints,
    resume: Option<Resume>,
    step: Option<Step>,
    /// A step ended by a context switch (a trap back to the kernel, a
    /// hypercall): report it after this exit.
    step_done: bool,
    /// The guest has run since the first connection.
    started: bool,
    /// The signal a guest-kernel crash was reported with.
    crash_signal: Option<Signal>,
    kernel_text: Vec<Range<u64>>,
    /// Ring-3 code and stack segments (the same for kernel and processes).
    user_cs: kvm_segment,
    user_ss: kvm_segment,
}

impl Gdb {
    /// Listens on `addr` (say so on stderr) for a client to debug the guest
    /// whose kernel ELF is `kernel_elf`. Call on the vCPU thread.
    pub fn listen(addr: &str, kernel_elf: &[u8]) -> std::io::Result<Gdb> {
        let listener = TcpListener::bind(addr)?;
        let local = listener.local_addr()?;
        // SAFETY: pthread_self has no preconditions.
        let me = unsafe { libc::pthread_self() };
        let watcher = Watcher::start(me, crate::slice_timer::signal())?;
        eprintln!("vkernel: waiting for gdb on {local}");
        Ok(Gdb {
            listener,
            addr: local.to_string(),
            sm: None,
            framer: Framer::default(),
            watcher,
            bps: Breakpoints::default(),
            resume: None,
            step: None,
            step_done: false,
            started: false,
            crash_signal: None,
            kernel_text: executable_segments(kernel_elf),
            user_cs: kvm_segment::default(),
            user_ss: kvm_segment::default(),
        })
    }

    fn in_kernel_text(&self, va: u64) -> bool {
        self.kernel_text.iter().any(|r| r.contains(&va))
    }

    /// Whether the watcher has something for the run loop.
    pub fn attention(&self) -> bool {
        self.watcher.attention()
    }

    fn new_session(&mut self, m: &mut Machine, stream: TcpStream) {
        let peer = stream
            .peer_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|_| "?".into());
        let _ = stream.set_nonblocking(false);
        let conn = Conn {
            stream,
            out: Vec::new(),
        };
        match GdbStub::new(conn).run_state_machine(m) {
            Ok(sm) => {
                log::info!("gdb: client {peer} connected");
                eprintln!("vkernel: gdb connected from {peer}");
                self.sm = Some(sm);
                self.framer = Framer::default();
            }
            Err(e) => log::warn!("gdb: cannot start a session with {peer}: {e}"),
        }
    }
}

/// The executable PT_LOAD ranges of the guest kernel's ELF (none if it is
/// not an x86-64 ELF64 with a readable program header table).
fn executable_segments(elf: &[u8]) -> Vec<Range<u64>> {
    use ::elf::abi::{PF_X, PT_LOAD};
    let Ok(phdrs) =
        vkernel_abi::elf::header(elf).and_then(|h| vkernel_abi::elf::program_headers(elf, &h))
    else {
        return Vec::new();
    };
    phdrs
        .iter()
        .filter(|p| p.p_type == PT_LOAD && p.p_flags & PF_X != 0)
        .map(|p| p.p_vaddr..p.p_vaddr.saturating_add(p.p_memsz))
        .collect()
}

fn gdb(m: &mut Machine) -> &mut Gdb {
    m.gdb
        .as_deref_mut()
        .expect("gdb hooks run only with a debugger")
}

/// Takes the debugger out of the machine for a call that needs both.
fn with_gdb<R>(m: &mut Machine, f: impl FnOnce(&mut Gdb, &mut Machine) -> R) -> R {
    let mut g = m.gdb.take().expect("gdb hooks run only with a debugger");
    let r = f(&mut g, m);
    m.gdb = Some(g);
    r
}

/// Before the first instruction: wait for a client and serve it until it
/// resumes the guest; Err if it killed the guest.
pub fn first_stop(m: &mut Machine) -> Result<Flow, String> {
    let (regs, sregs) = m.initial_registers().map_err(|e| e.to_string())?;
    {
        let g = gdb(m);
        g.user_cs = sregs.cs;
        g.user_ss = sregs.ss;
    }
    m.load_context(regs, sregs);
    serve(m, None)
}

/// Serves the client while the guest is stopped (reporting `reason` first
/// if the client is waiting for a stop); returns when it resumes the guest
/// (Ok), or Err("") when the client killed it.
fn serve(m: &mut Machine, mut reason: Option<StopReason>) -> Result<Flow, String> {
    gdb(m).watcher.set(Watch::Nothing);
    loop {
        let sm = match gdb(m).sm.take() {
            Some(sm) => sm,
            None => {
                if gdb(m).started {
                    // No client: the guest runs on.
                    watch_running(m);
                    return Ok(Flow::Resume);
                }
                // Before the first resume, wait for the next client.
                let accepted = gdb(m).listener.accept();
                match accepted {
                    Ok((stream, _)) => with_gdb(m, |g, m| g.new_session(m, stream)),
                    Err(e) => {
                        log::warn!("gdb: accept failed: {e}");
                        std::thread::sleep(std::time::Duration::from_millis(100));
                    }
                }
                continue;
            }
        };
        let next = match sm {
            GdbStubStateMachine::Running(s) => match reason.take() {
                Some(r) => s.report_stop(m, r).map_err(|e| e.to_string()),
                None => {
                    gdb(m).sm = Some(GdbStubStateMachine::Running(s));
                    apply_resume(m);
                    return Ok(Flow::Resume);
                }
            },
            GdbStubStateMachine::Idle(mut s) => {
                let mut b = [0u8; 1];
                let stream = &mut s.borrow_conn().stream;
                let _ = stream.set_nonblocking(false);
                match stream.read(&mut b) {
                    Ok(1) => take_byte(m, GdbStubStateMachine::Idle(s), b[0]),
                    Ok(_) => {
                        lost(m, "the client closed the connection");
                        continue;
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => {
                        gdb(m).sm = Some(GdbStubStateMachine::Idle(s));
                        continue;
                    }
                    Err(e) => {
                        lost(m, &format!("reading from the client: {e}"));
                        continue;
                    }
                }
            }
            GdbStubStateMachine::CtrlCInterrupt(s) => s
                .interrupt_handled(m, Some(StopReason::Signal(Signal::SIGINT)))
                .map_err(|e| e.to_string()),
            GdbStubStateMachine::Disconnected(mut s) => match s.get_reason() {
                DisconnectReason::Kill => {
                    // gdb waits for an answer to `vKill` (gdbstub gives
                    // none outside extended mode); `k` expects none.
                    let c = s.borrow_conn();
                    c.out.extend_from_slice(b"$OK#9a");
                    let _ = c.flush();
                    forget_client(m);
                    eprintln!("vkernel: gdb killed the guest");
                    return Err(String::new());
                }
                DisconnectReason::Disconnect => {
                    // Detach: the guest runs on, even before its first
                    // instruction.
                    gdb(m).started = true;
                    lost(m, "the client detached");
                    continue;
                }
                why => {
                    lost(m, &format!("the session ended ({why:?})"));
                    continue;
                }
            },
        };
        match next {
            Ok(sm) => gdb(m).sm = Some(sm),
            Err(e) => lost(m, &format!("protocol error: {e}")),
        }
    }
}

/// The client is gone: lift every breakpoint, forget the step; the guest
/// goes on running (or, before it ever ran, waits for the next client).
fn lost(m: &mut Machine, why: &str) {
    log::warn!("gdb: {why}; the guest keeps running");
    eprintln!("vkernel: gdb session ended: {why}; the guest keeps running");
    forget_client(m);
}

fn forget_client(m: &mut Machine) {
    let mem = m.vm.mem.clone();
    let g = gdb(m);
    g.sm = None;
    g.resume = None;
    g.step = None;
    g.step_done = false;
    for p in g.bps.planted().map(|(_, p)| *p).collect::<Vec<_>>() {
        lift(&mem, &p);
    }
    g.bps = Breakpoints::default();
}

fn watch_running(m: &mut Machine) {
    let g = gdb(m);
    let w = match &mut g.sm {
        Some(GdbStubStateMachine::Running(s)) => Watch::Client(s.borrow_conn().stream.as_raw_fd()),
        _ => Watch::Listener(g.listener.as_raw_fd()),
    };
    g.watcher.set(w);
}

/// The client resumed the guest: set up the step, watch the socket.
fn apply_resume(m: &mut Machine) {
    gdb(m).started = true;
    let action = gdb(m).resume.take().unwrap_or(Resume::Continue);
    gdb(m).step = None;
    gdb(m).step_done = false;
    if action == Resume::Step {
        let sync = m.vm.vcpu.sync_regs();
        let (mut regs, cr3) = (sync.regs, sync.sregs.cr3);
        let mut code = [0u8; 16];
        let n = read_virt(&m.vm.mem, cr3, regs.rip, &mut code);
        let step = Step {
            guest_tf: regs.rflags & rflags::TF != 0,
            insn: classify(&code[..n]),
        };
        regs.rflags |= rflags::TF;
        let sregs = sync.sregs;
        m.load_context(regs, sregs);
        gdb(m).step = Some(step);
    }
    watch_running(m);
}

/// Sorts the instruction at the start of `code` (after legacy and REX
/// prefixes).
fn classify(code: &[u8]) -> StepInsn {
    let op = code.iter().copied().find(|b| {
        !matches!(
            b,
            0x66 | 0x67 | 0xf0 | 0xf2 | 0xf3 | 0x2e | 0x36 | 0x3e | 0x26 | 0x64 | 0x65 | 0x40
                ..=0x4f
        )
    });
    match op {
        Some(0x9c) => StepInsn::Pushf,
        Some(0x9d) | Some(0xcf) => StepInsn::Popf,
        _ => StepInsn::Other,
    }
}

/// After every exit the run loop handled (guest about to resume): report a
/// finished step, or serve what the watcher saw. Cheap when nothing is up.
pub fn after_exit(m: &mut Machine) -> Result<Flow, String> {
    let g = gdb(m);
    if !g.step_done && !g.attention() {
        return Ok(Flow::Resume);
    }
    // Never stop between an exception's delivery and its stub's `out`.
    if m.vm.vcpu.sync_regs().sregs.cs.selector & 3 == 0 {
        return Ok(Flow::Resume);
    }
    let g = gdb(m);
    if g.step_done {
        g.step_done = false;
        g.step = None;
        return serve(m, Some(StopReason::DoneStep));
    }
    attend(m)
}

/// The watcher saw data from the client or a new client.
fn attend(m: &mut Machine) -> Result<Flow, String> {
    let flow = attend_inner(m);
    if matches!(flow, Ok(Flow::Resume)) && m.gdb.is_some() {
        watch_running(m); // the client, or (it left) the listener
    }
    flow
}

fn attend_inner(m: &mut Machine) -> Result<Flow, String> {
    let g = gdb(m);
    g.watcher.set(Watch::Nothing);
    let Some(sm) = g.sm.take() else {
        let _ = g.listener.set_nonblocking(true);
        let accepted = g.listener.accept();
        let _ = g.listener.set_nonblocking(false);
        return match accepted {
            Ok((stream, _)) => {
                with_gdb(m, |g, m| g.new_session(m, stream));
                // A new client finds the guest stopped where it is.
                serve(m, None)
            }
            Err(_) => {
                watch_running(m);
                Ok(Flow::Resume)
            }
        };
    };
    let mut sm = sm;
    loop {
        let GdbStubStateMachine::Running(mut s) = sm else {
            gdb(m).sm = Some(sm);
            return serve(m, None);
        };
        let mut b = [0u8; 1];
        let stream = &mut s.borrow_conn().stream;
        let _ = stream.set_nonblocking(true);
        let r = stream.read(&mut b);
        let _ = stream.set_nonblocking(false);
        sm = match r {
            Ok(1) => match take_byte(m, GdbStubStateMachine::Running(s), b[0]) {
                Ok(next) => next,
                Err(e) => {
                    lost(m, &format!("protocol error: {e}"));
                    return Ok(Flow::Resume);
                }
            },
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => {
                gdb(m).sm = Some(GdbStubStateMachine::Running(s));
                watch_running(m);
                return Ok(Flow::Resume);
            }
            Ok(_) => {
                lost(m, "the client closed the connection");
                return Ok(Flow::Resume);
            }
            Err(e) => {
                lost(m, &format!("reading from the client: {e}"));
                return Ok(Flow::Resume);
            }
        };
    }
}

/// The guest kernel exited with `status`: tell the client (W packet).
pub fn exited(m: &mut Machine, status: i32) {
    let g = gdb(m);
    g.watcher.set(Watch::Nothing);
    if let Some(GdbStubStateMachine::Running(s)) = g.sm.take() {
        match s.report_stop(m, StopReason::Exited((status & 0xff) as u8)) {
            Ok(_) => log::info!("gdb: reported the guest's exit ({status})"),
            Err(e) => log::warn!("gdb: reporting the guest's exit: {e}"),
        }
    }
    forget_client(m);
}

/// The guest kernel crashed with exception `vector` (already reported on
/// stderr): stop there with the matching signal so the client can look at
/// the crash (registers as at the faulting instruction); whatever it does
/// next, the run then ends.
pub fn crashed(m: &mut Machine, vector: u8, regs: kvm_regs, mut sregs: kvm_sregs) {
    let sig = match vector {
        0 | 16 | 19 => Signal::SIGFPE,
        1 | 3 => Signal::SIGTRAP,
        6 => Signal::SIGILL,
        17 => Signal::SIGBUS,
        _ => Signal::SIGSEGV,
    };
    let g = gdb(m);
    g.crash_signal = Some(sig);
    g.step = None;
    sregs.cs = g.user_cs;
    sregs.ss = g.user_ss;
    m.load_context(regs, sregs);
    if matches!(gdb(m).sm, Some(GdbStubStateMachine::Running(_))) {
        let _ = serve(m, Some(StopReason::Signal(sig)));
    }
}

/// The host stopped the guest (a crash or a broken protocol, already
/// reported): tell the client the guest was terminated.
pub fn terminated(m: &mut Machine) {
    let g = gdb(m);
    g.watcher.set(Watch::Nothing);
    let sig = g.crash_signal.unwrap_or(Signal::SIGKILL);
    if let Some(GdbStubStateMachine::Running(s)) = g.sm.take() {
        let _ = s.report_stop(m, StopReason::Terminated(sig));
    }
    forget_client(m);
}

/// A kernel hypercall finished (possibly entering a process). A step that
/// ran the hypercall's `out` is done: put RIP past the `out` if the kernel
/// is still on the vCPU, and keep the debugger's TF out of the kernel's
/// saved context.
pub fn hypercall_done(m: &mut Machine) {
    let Some(step) = gdb(m).step else {
        return;
    };
    let strip = |fl: u64| {
        if step.guest_tf {
            fl
        } else {
            fl & !rflags::TF
        }
    };
    if let Some(r) = m.running.as_mut() {
        r.kernel_regs.rflags = strip(r.kernel_regs.rflags);
    } else {
        let sync = m.vm.vcpu.sync_regs();
        let (mut regs, sregs) = (sync.regs, sync.sregs);
        let mut op = [0u8; 1];
        if read_virt(&m.vm.mem, sregs.cr3, regs.rip, &mut op) == 1 && op[0] == 0xef {
            regs.rip += 1;
        }
        regs.rflags = strip(regs.rflags);
        m.load_context(regs, sregs);
    }
    gdb(m).step_done = true;
}

/// RUN entered a process (its CR3 is on the vCPU): plant the process
/// breakpoints in it.
pub fn entered_process(m: &mut Machine) {
    if gdb(m).bps.process.is_empty() {
        return;
    }
    arm_process(m);
}

/// Plants every process breakpoint not yet planted in the process on the
/// vCPU (pages not mapped yet are tried again after each resolved fault).
pub fn arm_process(m: &mut Machine) {
    let cr3 = m.vm.vcpu.sync_regs().sregs.cr3;
    let mem = m.vm.mem.clone();
    let g = gdb(m);
    if g.bps.armed.len() == g.bps.process.len() {
        return;
    }
    for va in g.bps.process.clone() {
        if g.bps.armed.contains_key(&va) {
            continue;
        }
        match plant(&mem, cr3, va) {
            Some(p) => {
                log::debug!("gdb: planted {va:#x} (gpa {:#x}) in cr3 {cr3:#x}", p.gpa);
                g.bps.armed.insert(va, p);
            }
            None => log::debug!("gdb: {va:#x} not mapped in cr3 {cr3:#x} yet"),
        }
    }
}

/// A process is about to trap back to the kernel with `tf`: lift its
/// breakpoints, and keep the debugger's TF out of the frame (the step is
/// then over: it is reported with the kernel back on the vCPU).
pub fn leaving_process(m: &mut Machine, tf: &mut TrapFrame) {
    let mem = m.vm.mem.clone();
    let g = gdb(m);
    for (_, p) in std::mem::take(&mut g.bps.armed) {
        lift(&mem, &p);
    }
    if let Some(step) = g.step {
        if !step.guest_tf {
            tf.rflags &= !rflags::TF;
            if tf.trapno == T_FAST_SYSCALL {
                tf.r11 &= !rflags::TF; // `syscall` saved RFLAGS there
            }
        }
        g.step_done = true;
    }
}

/// #BP (vector 3) or #DB (vector 1) arrived; `regs` is the interrupted
/// context (rip/rsp/rflags from the hardware frame). Returns None when the
/// trap is the guest's own, to take its usual path.
pub fn debug_trap(
    m: &mut Machine,
    vector: u8,
    mut regs: kvm_regs,
    sregs: kvm_sregs,
) -> Option<Result<Flow, String>> {
    let in_process = m.running.is_some();
    let g = gdb(m);
    let mut sregs = sregs;
    sregs.cs = g.user_cs;
    sregs.ss = g.user_ss;
    let reason = match vector {
        3 => {
            let at = regs.rip.wrapping_sub(1);
            let ours = if in_process {
                g.bps.armed.contains_key(&at)
            } else {
                g.bps.kernel.contains_key(&at)
            };
            if !ours {
                return None;
            }
            regs.rip = at;
            // A step that ran into a breakpoint is over too.
            if let Some(step) = g.step.take() {
                if !step.guest_tf {
                    regs.rflags &= !rflags::TF;
                }
            }
            StopReason::SwBreak(())
        }
        1 => {
            let step = g.step?;
            if step.guest_tf {
                return None; // the guest's own trace trap: it gets it
            }
            g.step = None;
            if step.insn != StepInsn::Popf {
                regs.rflags &= !rflags::TF;
            }
            if step.insn == StepInsn::Pushf {
                let mut word = [0u8; 8];
                if read_virt(&m.vm.mem, sregs.cr3, regs.rsp, &mut word) == 8 {
                    let v = u64::from_le_bytes(word) & !rflags::TF;
                    write_virt(&m.vm.mem, sregs.cr3, regs.rsp, &v.to_le_bytes());
                }
            }
            StopReason::DoneStep
        }
        _ => return None,
    };
    m.load_context(regs, sregs);
    Some(serve(m, Some(reason)))
}

impl Drop for Gdb {
    fn drop(&mut self) {
        log::debug!("gdb: stub on {} closed", self.addr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_finds_pushf_popf_and_iret_behind_prefixes() {
        assert_eq!(classify(&[0x9c]), StepInsn::Pushf);
        assert_eq!(classify(&[0x66, 0x9c]), StepInsn::Pushf);
        assert_eq!(classify(&[0x9d]), StepInsn::Popf);
        assert_eq!(classify(&[0x48, 0xcf]), StepInsn::Popf);
        assert_eq!(classify(&[0x48, 0x89, 0xf8]), StepInsn::Other);
        assert_eq!(classify(&[]), StepInsn::Other);
    }

    fn frame(f: &mut Framer, bytes: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        for &b in bytes {
            match f.push(b) {
                Framed::More => {}
                Framed::Pass(p) => out.push(String::from_utf8_lossy(&p).into_owned()),
                Framed::Nak => out.push("NAK".into()),
            }
        }
        out
    }

    #[test]
    fn framer_passes_good_packets_and_controls_drops_junk_and_naks_bad_sums() {
        let mut f = Framer::default();
        assert_eq!(
            frame(&mut f, b"junk+$g#67\x03$g#00-$m0,8#01"),
            ["+", "$g#67", "\x03", "NAK", "-", "$m0,8#01"]
        );
        assert_eq!(frame(&mut f, b"$?#3"), Vec::<String>::new());
        assert_eq!(frame(&mut f, b"f"), ["$?#3f"]);
    }

    #[test]
    fn executable_segments_of_the_built_kernel() {
        let elf = crate::images::KERNEL;
        let text = executable_segments(elf);
        assert!(!text.is_empty());
        assert!(text.iter().any(|r| r.contains(&0x20_0000)), "{text:x?}");
        assert!(text.iter().all(|r| r.end <= 0x40_0000), "{text:x?}");
        assert!(executable_segments(b"not an elf").is_empty());
    }
}
