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
    assert!(json["host_overhead_kib"].as_u64().unwrap() > 0);
}
