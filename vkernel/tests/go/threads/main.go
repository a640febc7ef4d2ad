// Go's runtime on vkernel's threads (#15): goroutines on several OS
// threads, channels, time.Sleep, timers, sync.WaitGroup and Mutex,
// GOMAXPROCS, preemption of a loop that makes no calls (SIGURG through
// tgkill), and a panic's stack trace. Prints the same natively and in the
// guest; `threads panic` ends in a panic (exit status 2); `threads
// clock` reads time.Now a million times.
package main

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"
)

//go:noinline
func crash(depth int) {
	if depth == 0 {
		var m map[string]int
		m["x"] = 1 // panics: assignment to entry in nil map
	}
	crash(depth - 1)
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "panic" {
		crash(3)
	}
	if len(os.Args) > 1 && os.Args[1] == "clock" {
		// time.Now through the vDSO (#17): a million readings, never
		// going back.
		last := time.Now()
		back := 0
		for i := 0; i < 1000000; i++ {
			now := time.Now()
			if now.Before(last) {
				back++
			}
			last = now
		}
		fmt.Println("clock readings going back:", back)
		return
	}
	runtime.GOMAXPROCS(4)
	fmt.Println("GOMAXPROCS:", runtime.GOMAXPROCS(0))

	// Goroutines locked to OS threads: distinct tids of one process.
	tids := make(chan int, 4)
	release := make(chan struct{})
	for i := 0; i < 4; i++ {
		go func() {
			runtime.LockOSThread()
			tids <- syscall.Gettid()
			<-release
		}()
	}
	seen := map[int]bool{}
	for i := 0; i < 4; i++ {
		seen[<-tids] = true
	}
	close(release)
	fmt.Println("distinct OS threads:", len(seen))

	// Channels and sleeps.
	var wg sync.WaitGroup
	ch := make(chan int, 10)
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			time.Sleep(time.Duration(i) * time.Millisecond)
			ch <- i * i
		}(i)
	}
	wg.Wait()
	close(ch)
	sum := 0
	for v := range ch {
		sum += v
	}
	fmt.Println("sum of squares:", sum)

	// A mutex under contention.
	var mu sync.Mutex
	count := 0
	var wg2 sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg2.Add(1)
		go func() {
			defer wg2.Done()
			for j := 0; j < 2000; j++ {
				mu.Lock()
				count++
				mu.Unlock()
			}
		}()
	}
	wg2.Wait()
	fmt.Println("count:", count)

	// A timer, then a ticker's first three ticks (each no earlier than
	// its period).
	start := time.Now()
	timer := time.NewTimer(30 * time.Millisecond)
	<-timer.C
	fmt.Println("timer after >= 30ms:", time.Since(start) >= 30*time.Millisecond)
	start = time.Now()
	ticker := time.NewTicker(5 * time.Millisecond)
	for i := 0; i < 3; i++ {
		<-ticker.C
	}
	ticker.Stop()
	fmt.Println("3 ticks after >= 15ms:", time.Since(start) >= 15*time.Millisecond)

	// Preemption: with one P, a loop without calls must be preempted
	// (asynchronously, by SIGURG) for main to run again.
	runtime.GOMAXPROCS(1)
	var stop int32
	go func() {
		n := 0
		for stop == 0 {
			n++
		}
		_ = n
	}()
	time.Sleep(20 * time.Millisecond)
	stop = 1
	fmt.Println("preempted a tight loop")
}
