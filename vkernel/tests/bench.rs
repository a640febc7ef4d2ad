//! The benchmarks still work (quick mode; their figures gate nothing).

mod common;

#[test]
fn quick_bench_produces_every_figure_with_a_ratio() {
    let dir = tempfile::tempdir().unwrap();
    let json_path = dir.path().join("bench.json");
    let r = common::vkernel(&["bench", "--quick", "--json", json_path.to_str().unwrap()]);
    r.expect_code(0).stdout_has("floor").stdout_has("syscall");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    for key in [
        "floor",
        "syscall_exit",
        "syscall_design_floor",
        "null_hypercall",
        "syscall",
        "page_fault",
        "fault_to_kernel",
        "context_switch",
        "fork_exit_wait",
        "thread_create_join",
        "futex_pingpong",
        "thread_switch",
        "process_switch",
        "vmspace_mmap_munmap",
        "vmspace_pread",
        "kernel_entry",
        "init_first_instruction",
        "boot_to_exit",
    ] {
        let ratio = json[key]["ratio"]
            .as_f64()
            .unwrap_or_else(|| panic!("{key} has no ratio: {json}"));
        assert!(ratio > 0.0 && ratio.is_finite(), "{key}: ratio {ratio}");
    }
    assert_eq!(json["floor"]["ratio"].as_f64(), Some(1.0));
    // A bare `syscall` exit is at least one exit, and the design's floor
    // for a system call is the two exits together.
    let ratio = |key: &str| json[key]["ratio"].as_f64().unwrap();
    assert!(ratio("syscall_exit") > 0.5, "{json}");
    assert!(
        (ratio("syscall_design_floor") - 1.0 - ratio("syscall_exit")).abs() < 1e-9,
        "{json}"
    );
    assert!(json["host_overhead_kib"].as_u64().unwrap() > 0);

    // Every process-level benchmark ran natively in the same run: its
    // native figure and the ratio to it are in the JSON, on both pmaps.
    for key in [
        "fork_exit_wait",
        "fork_exit_wait_guest",
        "first_touch",
        "first_touch_guest",
        "thread_create_join",
        "pipe_64k",
        "pipe_pingpong_guest",
        "tmpfs_write_1m",
        "tmpfs_read_1m_guest",
        "open_fstat_close",
        "clock_gettime_syscall",
        "boot_to_exit",
    ] {
        let fig = &json[key];
        let native = fig["native_ns"]
            .as_f64()
            .unwrap_or_else(|| panic!("{key} has no native figure: {fig}"));
        assert!(native > 0.0 && native.is_finite(), "{key}: native {native}");
        let median = fig["median_ns"].as_f64().unwrap();
        let ratio = fig["ratio_to_native"]
            .as_f64()
            .unwrap_or_else(|| panic!("{key} has no ratio to native: {fig}"));
        assert!(
            (ratio - median / native).abs() <= 1e-9 * ratio.abs().max(1.0),
            "{key}: ratio to native {ratio}, median {median} / native {native}"
        );
    }
    // The VM-level figures have no native counterpart.
    for key in ["floor", "null_hypercall", "vmspace_pread", "kernel_entry"] {
        assert!(json[key]["native_ns"].is_null(), "{key}: {}", json[key]);
        assert!(
            json[key]["ratio_to_native"].is_null(),
            "{key}: {}",
            json[key]
        );
    }
}

/// `--floor-only`, what bench/peers.sh records next to its peers: one
/// `bench floor` line and nothing else measured (a quick one takes well
/// under a second).
#[test]
fn floor_only_prints_the_floor_alone() {
    let r = common::vkernel(&["bench", "--quick", "--floor-only"]);
    r.expect_code(0);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{}", r.stdout);
    let median: f64 = lines[0]
        .strip_prefix("bench floor median_ns=")
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("not a floor line: {}", lines[0]));
    assert!(median > 0.0 && median.is_finite(), "{median}");
}
