//! `vkernel`: parse the command line, build the VM, run it, map the outcome
//! to the process exit code.

use std::process::ExitCode;

use clap::Parser;
use vkernel::cli::{Cli, Command};

fn main() -> ExitCode {
    vkernel::host_start();
    // One malloc arena for the process: glibc gives each new thread that
    // allocates an arena of its own, reserving 64 MiB of address space,
    // which RLIMIT_AS counts: the VM's thread, started before guest
    // memory is mapped, would take it from a pool capped to that limit.
    // vkernel's other threads (the debugger's watcher) barely allocate.
    // SAFETY: mallopt with integer arguments, before any other thread.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .format_timestamp_micros()
        .init();
    // clap's own exit status for a usage error is 2, which vkernel keeps
    // for "the host stopped the guest": a command line it refuses is 1,
    // as every other input it refuses before running.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            // --help and --version print on stdout; errors on stderr.
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let args = match cli.command {
        Some(Command::Run(args)) => *args,
        Some(Command::Test(args)) => {
            // The hostfs cases walk a fixture directory served as volume 0,
            // and change two served writable as volumes 1 and 2.
            let fixture = match vkernel::program::hostfs_fixture() {
                Ok(f) => f,
                Err(e) => {
                    vkernel::report!("vkernel test: {e}");
                    return ExitCode::from(1);
                }
            };
            let mut run = args.to_run_args();
            run.rootfs = Some(fixture.root());
            run.volume = fixture
                .writable()
                .iter()
                .enumerate()
                .map(|(i, d)| format!("{}:/rw{i}:rw", d.display()))
                .collect();
            // On a thread of its own: its seccomp filter stays on it, so
            // this thread can remove the fixture afterwards.
            let outcome = std::thread::spawn(move || vkernel::run(&run)).join();
            let intact = fixture.outside_intact();
            drop(fixture);
            if !intact {
                vkernel::report!("vkernel test: a file outside the served directories changed");
                return ExitCode::from(1);
            }
            return match outcome {
                Ok(Ok(status)) => ExitCode::from(status),
                Ok(Err(e)) => {
                    vkernel::report!("vkernel: {e}");
                    ExitCode::from(1)
                }
                Err(_) => ExitCode::from(101),
            };
        }
        Some(Command::Bench(args)) => {
            return match vkernel::bench::run(&args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    vkernel::report!("vkernel bench: {e}");
                    ExitCode::from(1)
                }
            }
        }
        None => Default::default(),
    };
    match vkernel::run(&args) {
        Ok(status) => ExitCode::from(status),
        Err(e) => {
            vkernel::report!("vkernel: {e}");
            ExitCode::from(1)
        }
    }
}
