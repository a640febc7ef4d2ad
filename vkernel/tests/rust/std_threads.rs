//! Rust's std on vkernel's threads (#15): std::thread spawn/join with
//! results, std::sync::mpsc, Arc<Mutex<_>>, Condvar, Barrier, thread-local
//! storage, scoped threads, park/unpark, and a panicking thread caught by
//! join. Prints the same natively and in the guest. Built static by
//! tests/runtimes.rs (`rustc -C target-feature=+crt-static`).

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Barrier, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

thread_local! {
    static MINE: Cell<u64> = const { Cell::new(0) };
}

fn main() {
    // spawn and join with results; each thread's TLS is its own.
    let handles: Vec<_> = (1..=8u64)
        .map(|i| {
            thread::spawn(move || {
                MINE.with(|m| m.set(i * 10));
                thread::yield_now();
                MINE.with(|m| m.get())
            })
        })
        .collect();
    let got: Vec<u64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    println!("joined: {got:?}, main's TLS still {}", MINE.with(|m| m.get()));

    // mpsc from several producers.
    let (tx, rx) = mpsc::channel();
    for id in 0..4u64 {
        let tx = tx.clone();
        thread::spawn(move || {
            for n in 0..250u64 {
                tx.send(id * 1000 + n).unwrap();
            }
        });
    }
    drop(tx);
    let sum: u64 = rx.iter().sum();
    println!("mpsc sum: {sum}");

    // Arc<Mutex<_>> under contention.
    let counter = Arc::new(Mutex::new(0u64));
    let ts: Vec<_> = (0..8)
        .map(|_| {
            let c = Arc::clone(&counter);
            thread::spawn(move || {
                for _ in 0..5000 {
                    *c.lock().unwrap() += 1;
                }
            })
        })
        .collect();
    for t in ts {
        t.join().unwrap();
    }
    println!("mutex count: {}", *counter.lock().unwrap());

    // Condvar handshake and a barrier.
    let pair = Arc::new((Mutex::new(false), Condvar::new()));
    let p2 = Arc::clone(&pair);
    let t = thread::spawn(move || {
        thread::sleep(Duration::from_millis(10));
        *p2.0.lock().unwrap() = true;
        p2.1.notify_one();
    });
    let mut ready = pair.0.lock().unwrap();
    while !*ready {
        ready = pair.1.wait(ready).unwrap();
    }
    drop(ready);
    t.join().unwrap();
    println!("condvar: ready");
    let barrier = Arc::new(Barrier::new(4));
    let leaders: usize = (0..4)
        .map(|_| {
            let b = Arc::clone(&barrier);
            thread::spawn(move || b.wait().is_leader())
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap() as usize)
        .sum();
    println!("barrier leaders: {leaders}");

    // Scoped threads borrowing the stack.
    let data = [1u64, 2, 3, 4, 5, 6, 7, 8];
    let total: u64 = thread::scope(|s| {
        let hs: Vec<_> = data
            .chunks(2)
            .map(|c| s.spawn(move || c.iter().sum::<u64>()))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum()
    });
    println!("scoped sum: {total}");

    // park / unpark, and a timed wait that times out.
    let flag = Arc::new(AtomicBool::new(false));
    let f2 = Arc::clone(&flag);
    let parked = thread::spawn(move || {
        while !f2.load(Ordering::Acquire) {
            thread::park();
        }
    });
    thread::sleep(Duration::from_millis(5));
    flag.store(true, Ordering::Release);
    parked.thread().unpark();
    parked.join().unwrap();
    let m = Mutex::new(());
    let cv = Condvar::new();
    let start = Instant::now();
    let (_g, r) = cv.wait_timeout(m.lock().unwrap(), Duration::from_millis(20)).unwrap();
    println!(
        "park/unpark done; wait_timeout timed out: {} after >=20ms: {}",
        r.timed_out(),
        start.elapsed() >= Duration::from_millis(20)
    );

    // A panicking thread is caught by join.
    let r = thread::Builder::new()
        .name("doomed".into())
        .spawn(|| panic!("on purpose"))
        .unwrap()
        .join();
    println!("panicked thread joined as error: {}", r.is_err());
}
